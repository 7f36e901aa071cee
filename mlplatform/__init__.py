"""mlplatform: upload scikit-learn models, get a safe, versioned, cached, rate-limited API."""
