/* lastzero(N) (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014), as
 * bench/programs.py has it: thread 0 scans array[] from the end for a zero
 * while writers j = 1..N each store array[j-1] + 1 into array[j]. One shared
 * access per statement. The property holds (the program is correct): when
 * every thread has finished, the scanner stopped at an index and no cell
 * holds more than its index.
 *
 *   spin -a -DN=3 lastzero.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan
 */
#ifndef N
#define N 3
#endif

byte array[N + 1];
byte zero = 255;            /* the scanner's result; 255: not yet */

proctype scanner() {
    byte i = N;
    do
    :: array[i] == 0 -> break
    :: else -> i--
    od;
    zero = i
}

proctype writer(byte j) {
    byte a;
    a = array[j - 1];
    array[j] = a + 1
}

init {
    byte j = 1;
    atomic {
        run scanner();
        do
        :: j <= N -> run writer(j); j++
        :: else -> break
        od
    };
    _nr_pr == 1;            /* every other process has ended */
    assert(zero <= N);
    j = 1;
    do
    :: j <= N -> assert(array[j] <= j); j++
    :: else -> break
    od
}
