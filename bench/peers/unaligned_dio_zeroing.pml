/* unaligned_dio_zeroing (scenarios/unaligned_dio_zeroing.yaml), reduced: two
 * AIO direct writes into one hole block of 8 units, aio1 units 0-2 and aio2
 * units 5-7. Each, under i_mutex, maps the block (a hole is allocated
 * unwritten, and an unwritten block is new: buffer_new) and submits its bio:
 * its data, and zeroes over the rest of the block when the block is new
 * (dio_zero_block). After i_mutex is let go the bio lands (one step), then
 * the completion converts the extent to written and acknowledges the write.
 * With -DFIXED (ext4_serialize_unaligned_aio) an unaligned write first takes
 * ext4_aio_mutex and waits until no AIO has unwritten extents left to
 * convert (ext4_aiodio_wait), and lets the mutex go once it is submitted. Checked at
 * every state: no_zero_overwrite (no acknowledged write's unit holds zeroes).
 * Left out: i_dio_count and i_alloc_sem, the page cache flush, i_size.
 *
 *   spin -a [-DFIXED] unaligned_dio_zeroing.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan
 */
#define STALE 0
#define ZERO 1
#define HOLE 0
#define UNWRITTEN 1
#define WRITTEN 2

byte unit[8];               /* the block's units: STALE, ZERO or 2 + the writer */
byte extent = HOLE;
bool i_mutex = false;
bool aio_mutex = false;    /* ext4_aio_mutex(inode) */
byte unconverted = 0;       /* AIOs with an unwritten extent left to convert */
bool acked[2];

inline lock(m)   { atomic { !m -> m = true } }
inline unlock(m) { m = false }

/* acknowledged and its units (first..last) not all its data */
#define lost(w, first, last) (acked[w] && (unit[first] != 2 + w || unit[first + 1] != 2 + w || unit[last] != 2 + w))
#define no_zero_overwrite (!lost(0, 0, 2) && !lost(1, 5, 7))

proctype aio(byte w; byte first; byte last) {
    bool new; byte u;
#ifdef FIXED
    lock(aio_mutex);
    unconverted == 0;                                 /* ext4_aiodio_wait */
#endif
    lock(i_mutex);
    atomic {                                          /* ext4_map_blocks(IO_CREATE_EXT) */
        new = (extent != WRITTEN);
        if
        :: extent == HOLE -> extent = UNWRITTEN
        :: else
        fi;
        if
        :: new -> unconverted++
        :: else
        fi
    };
    unlock(i_mutex);                                  /* the bio is submitted */
#ifdef FIXED
    unlock(aio_mutex);
#endif
    atomic {                                          /* dio_bio_end_aio: the bio lands */
        u = 0;
        do
        :: u < 8 && u >= first && u <= last -> unit[u] = 2 + w; u++
        :: u < 8 && (u < first || u > last) && new -> unit[u] = ZERO; u++
        :: u < 8 && (u < first || u > last) && !new -> u++
        :: u == 8 -> break
        od
    };
    lock(i_mutex);                                    /* ext4_end_io_work */
    atomic {
        extent = WRITTEN;                             /* IO_CONVERT_EXT */
        if
        :: new -> unconverted--
        :: else
        fi
    };
    atomic { acked[w] = true; unlock(i_mutex) }       /* aio_complete */
}

init {
    atomic { run aio(0, 0, 2); run aio(1, 5, 7) }
}

active proctype monitor() {
end:    /* waiting here is no deadlock */
    atomic { !no_zero_overwrite -> assert(no_zero_overwrite) }
}
