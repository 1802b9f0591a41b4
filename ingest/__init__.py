"""The write path: HTTP routes for Jenkins' PUTs, pure payload validation and a CLI loader."""
