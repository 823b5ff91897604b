"""Workers report in (``worker_presence``): the sweep hands back a silent worker's jobs, and the
system page lists the workers on every broker."""
