"""tumornb: brain-tumour MRI classification as a reproducible book."""

from tumornb.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
