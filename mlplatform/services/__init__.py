"""The service layer: every behaviour lives here once; transports stay thin."""
