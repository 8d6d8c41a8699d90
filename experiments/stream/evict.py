"""Drop a sharded set's files from the page cache (posix_fadvise DONTNEED),
so the next epoch reads them from disk: a cold-cache measurement that
leaves other processes' cached files alone.  usage: evict.py DIR"""
import os, sys
for name in sorted(os.listdir(sys.argv[1])):
    fd = os.open(os.path.join(sys.argv[1], name), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
