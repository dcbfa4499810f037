/** The receipt's pure parts: the settings diff (keys only), byte text, and table cells that cannot break a row. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bytesText, diffSettings, renderStack, settingsFromPairs, type ReceiptStack } from "../../lib/receipt";

void test("diffSettings names added, removed and changed keys, sorted, never values", () => {
    const d = diffSettings({ A: "1", B: "2", C: "3" }, { B: "2", C: "4", D: "5", A0: "x" }, "git main");
    assert.deepEqual(d, { kind: "compared", source: "git main", added: ["A0", "D"], removed: ["A"], changed: ["C"] });
    assert.deepEqual(settingsFromPairs(["K=a=b", "NOEQ", 3, "E="]), { K: "a=b", E: "" });
    assert.deepEqual(settingsFromPairs(undefined), {});
});

void test("bytesText gives the exact count beside the unit", () => {
    assert.equal(bytesText(0), "0 B");
    assert.equal(bytesText(1023), "1023 B");
    assert.equal(bytesText(6288), "6.1 KiB (6288 B)");
    assert.equal(bytesText(3 * 1024 * 1024), "3.0 MiB (3145728 B)");
});

void test("a warning or operation with a pipe or newline stays inside its table cell or list item", () => {
    const img = (image: "base" | "app") => ({
        image,
        repository: `r/${image}`,
        hash: "0".repeat(64),
        tag: `${image}-000000000000`,
        contextDir: "/c",
        dockerfile: "/c/Dockerfile",
        files: [],
        totalBytes: 0,
        warnings: image === "app" ? ["/p/Dockerfile:1: a | b\nc"] : [],
        copyOnly: image === "app",
    });
    const r: ReceiptStack = {
        plan: {
            stack: "s",
            platform: "linux/amd64",
            base: img("base"),
            app: img("app"),
            migrations: { hash: "", files: [] },
            settings: { hash: "", values: {} },
            releaseId: "rel-0",
            status: { base: { status: "reuse", reason: "" }, app: { status: "build", reason: "" } },
            registry: "",
            releaseImage: null,
            migrationSafety: { baseline: { kind: "fresh", source: "stack s" }, migrations: [], pending: [], staleAcknowledgements: [] },
        },
        projectDir: "/p",
        builder: "auto",
        registryCheck: true,
        upload: { base: { kind: "none", reason: "x | y" }, app: { kind: "measured", bytes: 10, tarBytes: 2048, entries: 3 } },
        settings: { kind: "unknown", reason: "r" },
    };
    const md = renderStack(r);
    assert.ok(md.includes("| base | `r/base:base-000000000000` | **reuse** (tag exists in the registry) | 0 files, 0 B | 0 B (x \\| y) |\n"), md);
    assert.ok(
        md.includes(
            "| app | `r/app:app-000000000000` | **build daemonless** (tag not in the registry) | 0 files, 0 B | **10 B**: the app layer as gzip, measured (3 entries); base layers are mounted, not uploaded |\n",
        ),
        md,
    );
    assert.ok(md.includes("\n- app: Dockerfile:1: a \\| b c\n"), md);
});
