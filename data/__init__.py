"""The store, the analysis core and the demo data: no Flask, Dash or Plotly here."""
