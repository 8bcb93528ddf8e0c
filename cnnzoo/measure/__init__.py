"""What the instruments and the speed tools share: how busy the machine was (``load``)."""
