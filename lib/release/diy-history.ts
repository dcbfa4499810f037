/**
 * Release history on a local DIY backend (`file://…`), where `pulumi stack export --version N` is
 * refused ("the current backend does not provide the ability to export previous deployments") and
 * every update in `pulumi stack history --json` has version 0.
 *
 * The DIY backend still keeps what a rollback needs: for every update it writes
 * `.pulumi/history/<project>/<stack>/<stack>-<nanos>.history.json` (the update: kind, startTime
 * and endTime in unix seconds, result) beside `<stack>-<nanos>.checkpoint.json` (the state after
 * it, stack outputs included). This module numbers those updates 1..N, oldest first, and answers
 * the two questions rollback asks: the history (as `pulumi stack history --json` shapes it) and the
 * state after update N. Older backends without project folders keep `.pulumi/history/<stack>/`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { inputError } from "../errors";

interface DiyUpdate {
    kind?: string;
    startTime?: number;
    endTime?: number;
    result?: string;
    message?: string;
    config?: Record<string, unknown>;
    environment?: Record<string, string>;
    resourceChanges?: Record<string, number>;
}

/** The local directory of a `file://` backend URL, or undefined for any other backend. */
export function localBackendDir(url: string | undefined): string | undefined {
    if (url === undefined || !url.startsWith("file://")) return undefined;
    const rest = url.slice("file://".length);
    if (rest === "" || rest === "~") return process.env.HOME;
    return rest.startsWith("~/") ? path.join(process.env.HOME ?? "", rest.slice(2)) : rest;
}

/** The history folder of a stack in a DIY backend directory, or undefined when it has none. */
export function diyHistoryDir(backendDir: string, project: string, stack: string): string | undefined {
    const name = stack.split("/").pop() ?? stack;
    for (const dir of [path.join(backendDir, ".pulumi", "history", project, name), path.join(backendDir, ".pulumi", "history", name)]) {
        if (fs.existsSync(dir)) return dir;
    }
    return undefined;
}

/** The updates of a DIY history folder, oldest first, each with its checkpoint file. */
export function diyUpdates(dir: string): { version: number; update: DiyUpdate; checkpoint: string }[] {
    const stems = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".history.json"))
        .map((f) => f.slice(0, -".history.json".length))
        // <stack>-<unix nanos>: order by the number, not the string (nanos can differ in length).
        .sort((a, b) => {
            const na = BigInt(/-(\d+)$/.exec(a)?.[1] ?? "0");
            const nb = BigInt(/-(\d+)$/.exec(b)?.[1] ?? "0");
            return na < nb ? -1 : na > nb ? 1 : 0;
        });
    return stems.map((stem, i) => {
        const file = path.join(dir, `${stem}.history.json`);
        let update: DiyUpdate;
        try {
            update = JSON.parse(fs.readFileSync(file, "utf8")) as DiyUpdate;
        } catch (e) {
            throw inputError({ input: file, value: "(not JSON)", allowed: "a DIY backend history file", fix: (e as Error).message });
        }
        return { version: i + 1, update, checkpoint: path.join(dir, `${stem}.checkpoint.json`) };
    });
}

/** `pulumi stack history --json`'s shape (newest first) for DIY updates, with their 1..N versions. */
export function diyHistoryJson(updates: ReturnType<typeof diyUpdates>): string {
    const iso = (s: number | undefined) => (s === undefined ? undefined : new Date(s * 1000).toISOString());
    const entries = [...updates].reverse().map(({ version, update }) => ({
        version,
        kind: update.kind ?? "update",
        startTime: iso(update.startTime),
        endTime: iso(update.endTime),
        message: update.message ?? "",
        environment: update.environment ?? {},
        config: update.config ?? {},
        result: update.result ?? "unknown",
        resourceChanges: update.resourceChanges,
    }));
    return JSON.stringify(entries);
}

/** The checkpoint written after update `version` (a state document `stackOutputsFromExport` reads). */
export function diyCheckpoint(updates: ReturnType<typeof diyUpdates>, version: number): string {
    const u = updates.find((x) => x.version === version);
    if (u === undefined || !fs.existsSync(u.checkpoint)) {
        throw inputError({
            input: "DIY backend history",
            value: `update ${version}`,
            allowed: "an update with its .checkpoint.json",
            fix: "pin the image directly with --image <repo@sha256:…>",
        });
    }
    return fs.readFileSync(u.checkpoint, "utf8");
}
