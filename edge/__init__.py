"""facegate's on-device package: a face-verification door lock for the Raspberry Pi.

Importing it loads no runtime, camera or GPIO library; those are imported
lazily where they are used.
"""

__version__ = "0.1.0"
