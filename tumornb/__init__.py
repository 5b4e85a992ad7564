"""tumornb: brain-tumour MRI classification as a reproducible book."""

__version__ = "0.1.0"
