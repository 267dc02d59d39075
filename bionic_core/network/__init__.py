"""The network a run trains: front end, masked hidden layers, readout,
assembled from the features."""
