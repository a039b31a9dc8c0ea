"""Delivery after merge: publish the model-api image, bump a blue/green slot, promote, roll back, status."""
