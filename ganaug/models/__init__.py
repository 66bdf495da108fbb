"""The networks: :mod:`~ganaug.models.dcgan` holds the class-conditional DCGAN's generator and discriminator."""
