"""Neural-network side of imcsim: reference models and offline datasets."""
