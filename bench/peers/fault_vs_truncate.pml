/* fault_vs_truncate (scenarios/fault_vs_truncate.yaml), reduced to its
 * locking: a load faults page 1 of a two-page ext2 -o xip file in while
 * truncate(2) shrinks the file to 0. The fault (xip_file_fault of 3.13)
 * checks i_size, looks the block up, then inserts the PFN (vm_insert_mixed);
 * truncate writes i_size, unmaps the range under i_mmap_mutex, frees the
 * block. With -DFIXED (seed 002 patch 01) the fault rechecks i_size under
 * i_mmap_mutex before inserting. Checked at every state:
 * no_freed_block_mapped (the PTE never maps a block the file no longer owns).
 * Left out: i_mutex (only truncate takes it), the sparse-page path and the
 * retry loops, page 0, the data.
 *
 *   spin -a [-DFIXED] fault_vs_truncate.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan
 */
#define PGOFF 1

byte i_size_pages = 2;      /* i_size in pages */
bool owned = true;          /* the file still owns the page's block */
bool pte = false;           /* the shared mapping maps page PGOFF */
bool i_mmap_mutex = false;

#define no_freed_block_mapped (!pte || owned)

inline lock(m)   { atomic { !m -> m = true } }
inline unlock(m) { m = false }

active proctype fault() {
    bool found;
    if
    :: PGOFF >= i_size_pages -> goto sigbus   /* size = i_size_read(...) */
    :: else
    fi;
    found = owned;                            /* get_xip_mem */
    if
    :: !found -> goto sigbus                  /* a hole now: the sparse path, left out */
    :: else
    fi;
#ifdef FIXED
    lock(i_mmap_mutex);
    if
    :: PGOFF >= i_size_pages -> unlock(i_mmap_mutex); goto sigbus
    :: else
    fi;
#endif
    pte = true;                               /* vm_insert_mixed */
#ifdef FIXED
    unlock(i_mmap_mutex);
#endif
sigbus:
    skip
}

active proctype truncate() {
    i_size_pages = 0;                         /* i_size_write */
    lock(i_mmap_mutex);                       /* unmap_mapping_range */
    pte = false;
    unlock(i_mmap_mutex);
    owned = false                             /* __ext2_truncate_blocks */
}

active proctype monitor() {
end:    /* waiting here is no deadlock */
    atomic { !no_freed_block_mapped -> assert(no_freed_block_mapped) }
}
