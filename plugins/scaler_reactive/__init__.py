"""scaler_reactive plugin."""
