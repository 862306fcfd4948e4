"""From a network's scores to particle picks, shared by training validation and prediction:
the overlap-tile scan (``tiling``), peak finding and de-duplication (``peaks``) and the picking
settings with the one function that applies them (``settings``)."""
