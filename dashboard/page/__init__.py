"""The Dash page: layout, controls, cards, the view model, callbacks, component ids and the browser's assets/."""
