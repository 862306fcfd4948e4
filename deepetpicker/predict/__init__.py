"""The prediction stage: trained weights + tomograms -> picks (see :mod:`.job`)."""
