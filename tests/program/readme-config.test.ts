/** The README's config reference is Pulumi.yaml's schema: every key with its type and default, and nothing else. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { renderConfigTable } from "./config-table";
import { loadProjectSchema } from "../../lib/config";

const ROOT = path.resolve(__dirname, "..", "..");

function readmeTable(): string {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = /<!-- section:config -->([\s\S]*?)<!-- \/section:config -->/.exec(readme)?.[1] ?? "";
    return (/<!-- config-table -->\n([\s\S]*?)\n<!-- \/config-table -->/.exec(section)?.[1] ?? "").trim();
}

void test("the README config table is exactly the one rendered from Pulumi.yaml", () => {
    assert.equal(readmeTable(), renderConfigTable(loadProjectSchema(ROOT)), "regenerate with: node --import tsx tests/program/config-table.ts");
});

void test("every Pulumi.yaml key is in the README with its type and default, and vice versa (read independently)", () => {
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { type: string; default: unknown }> };
    const rows = new Map<string, string[]>();
    for (const line of readmeTable().split("\n").slice(2)) {
        const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
        rows.set(cells[0].replace(/^`thinlayer:|`$/g, ""), cells);
    }
    assert.deepEqual([...rows.keys()].sort(), Object.keys(doc.config).sort());
    for (const [key, e] of Object.entries(doc.config)) {
        const [, type, dflt] = rows.get(key)!;
        assert.ok(type.startsWith(e.type === "array" ? "list of strings" : e.type), `${key}: type ${type}`);
        const shown = dflt.replace(/^`|`$/g, "");
        assert.equal(shown, typeof e.default === "string" ? (e.default === "" ? '""' : e.default) : JSON.stringify(e.default), `${key}: default`);
    }
});
