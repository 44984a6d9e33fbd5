"""A mood becomes instructions: musical controls, the emotion map, the conductor."""
