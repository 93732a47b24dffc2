// When each recent commit happened, shared between the daemon's main thread (which writes one
// entry per commit, a few stores into a SharedArrayBuffer, no message) and the replication thread
// (which reads the newest committed seq to know there is work, and the commit times to measure
// how long records waited to be shipped).
const SIZE = 4096;
const HEAD = 2; // [0] newest committed seq, [1] entries written

export class CommitRing {
  readonly buffer: SharedArrayBuffer;
  private readonly a: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(8 * (HEAD + 2 * SIZE));
    this.a = new Float64Array(this.buffer);
  }

  /** A transaction committed; `lastSeq` is its highest sequence. */
  committed(lastSeq: number, atMs = Date.now()): void {
    const n = this.a[1]!;
    const i = HEAD + 2 * (n % SIZE);
    this.a[i] = lastSeq;
    this.a[i + 1] = atMs;
    this.a[1] = n + 1;
    if (lastSeq > this.a[0]!) this.a[0] = lastSeq;
  }

  /** The highest committed seq the daemon reported (0 before its first commit). */
  get latest(): number {
    return this.a[0]!;
  }

  /**
   * When the record with `seq` was committed: the time of the first commit reaching it, when the
   * ring still holds the commit before it (else null: too old, or committed before the ring).
   */
  commitTime(seq: number): number | null {
    const n = Math.min(this.a[1]!, SIZE);
    let at: number | null = null;
    let reached = Infinity;
    let before = false;
    for (let k = 0; k < n; k++) {
      const s = this.a[HEAD + 2 * k]!;
      if (s < seq) before = true;
      else if (s < reached) (reached = s), (at = this.a[HEAD + 2 * k + 1]!);
    }
    return before ? at : null;
  }
}
