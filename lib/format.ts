/** Human-readable size: 1023 B, 1.5 KiB, 12.0 MiB (used by the plan text and the cost receipt). */
export function formatBytes(n: number): string {
    if (n < 1024) return `${n} B`;
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(1)} ${units[i]}`;
}

/** Wall-clock laps of one run, for a progress line: "inputs 12 ms, layer 140 ms". */
export class Laps {
    private last = process.hrtime.bigint();
    private readonly laps: Array<[string, number]> = [];

    /** Ends the lap `name` (the time since the previous lap, or since construction). */
    lap(name: string): void {
        const now = process.hrtime.bigint();
        this.laps.push([name, Number(now - this.last) / 1e6]);
        this.last = now;
    }

    toString(): string {
        return this.laps.map(([n, ms]) => `${n} ${Math.round(ms)} ms`).join(", ");
    }
}
