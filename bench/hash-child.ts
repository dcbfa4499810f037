/**
 * One thinlayer hash of the bench tree in a fresh process (what `thinlayer plan` does per image):
 * prints {ms, hash, files, bytes, maxRssKiB, hits, misses, bytesRead} as JSON.
 * Usage: node --import tsx bench/hash-child.ts <tree> <cache|nocache> [dockerfile]
 */
import * as path from "node:path";
import { computeInputs } from "../lib/hashing/inputs";
import type { HashStats } from "../lib/hashing/filehash";

async function main(): Promise<void> {
    const [tree, mode, dockerfile] = process.argv.slice(2);
    const stats: HashStats = { hits: 0, misses: 0, bytesRead: 0 };
    const t0 = process.hrtime.bigint();
    const r = await computeInputs(
        { role: "base", contextDir: tree, dockerfile: dockerfile ?? path.join(tree, "Dockerfile"), buildArgs: {}, platform: "linux/amd64" },
        { cache: mode === "cache" },
        stats,
    );
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(
        JSON.stringify({ ms, hash: r.hash, files: r.files.length, bytes: r.totalBytes, maxRssKiB: process.resourceUsage().maxRSS, ...stats }) + "\n",
    );
}

void main();
