/**
 * Slips a review found, kept out for good: each check scans the project's own source and docs
 * (not node_modules, not the README, which the lead keeps) and names every file:line it finds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
const DIRS = ["lib", "cli", "components", "bin", "policy", "tests", "docs", "bench", "examples", "scripts", "tools"];
const TOP = ["index.ts", "config.ts", "Pulumi.yaml"];
const TEXT = /\.(ts|mjs|js|md|py|ya?ml|sh)$/;
const SELF = path.relative(ROOT, __filename);

function files(): string[] {
    const out = TOP.filter((f) => fs.existsSync(path.join(ROOT, f)));
    const walk = (rel: string) => {
        for (const e of fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
            const child = `${rel}/${e.name}`;
            if (e.isDirectory()) {
                if (e.name !== "node_modules" && !e.name.startsWith(".")) walk(child);
            } else if (TEXT.test(e.name) && child !== SELF) {
                out.push(child);
            }
        }
    };
    for (const d of DIRS) if (fs.existsSync(path.join(ROOT, d))) walk(d);
    return out;
}

/** file:line: text of every line matching `re` in the files `which` selects. */
function find(re: RegExp, which: (f: string) => boolean = () => true): string[] {
    return files()
        .filter(which)
        .flatMap((f) =>
            fs
                .readFileSync(path.join(ROOT, f), "utf8")
                .split("\n")
                .flatMap((line, i) => (re.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
        );
}

test("JSDoc @default describes the behaviour, never `undefined`", () => {
    assert.deepEqual(find(/@default\s+undefined\b/), []);
});

test("no jargon a newcomer cannot resolve (work-item names, seed numbers, the design guide)", () => {
    assert.deepEqual(find(/\bH\d+'s\b|\bseed 0\d\d\b|\bcard package\b|\bdesign guide\b/i), []);
});

test("no no-op string appends", () => {
    assert.deepEqual(
        find(/\+=\s*""\s*;/, (f) => f.endsWith(".ts")),
        [],
    );
});

test("the app Dockerfile's base-image build arg is named through BASE_IMAGE_ARG in lib/, never spelled out", () => {
    assert.deepEqual(
        find(/["'`]BASE_IMAGE["'`]|\bBASE_IMAGE\s*:/, (f) => f.startsWith("lib/") && f.endsWith(".ts")).filter(
            (l) => !/export const BASE_IMAGE_ARG = "BASE_IMAGE";/.test(l),
        ),
        [],
    );
});
