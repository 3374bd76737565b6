"""``archbench scale``: data-parallel training through torchrun (:mod:`.launch`), a DDP rank per process (:mod:`.worker`)."""
