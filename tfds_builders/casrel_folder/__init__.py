"""Any folder of annotated sentences as a TFDS dataset (`casrel_folder`)."""
