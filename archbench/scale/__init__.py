"""``archbench scale``: data-parallel training through torchrun (:mod:`.launch`), one DDP rank per process (:mod:`.worker`)."""
