/** The config reference in docs/program.md is Pulumi.yaml's schema: every key with its type and default, and nothing else. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { CONFIG_DOC, renderConfigTable, TABLE_BLOCK } from "./config-table";
import { loadProjectSchema } from "../../lib/config";

const ROOT = path.resolve(__dirname, "..", "..");

function docTable(): string {
    const doc = fs.readFileSync(path.join(ROOT, CONFIG_DOC), "utf8");
    const table = TABLE_BLOCK.exec(doc)?.[2];
    assert.ok(table !== undefined, `${CONFIG_DOC} has no <!-- config-table --> … <!-- /config-table --> block`);
    return table.trim();
}

void test(`the config table in ${CONFIG_DOC} is exactly the one rendered from Pulumi.yaml`, () => {
    assert.equal(docTable(), renderConfigTable(loadProjectSchema(ROOT)), "regenerate with: node --import tsx tests/program/config-table.ts --write");
});

void test(`every Pulumi.yaml key is in ${CONFIG_DOC} with its type and default, and vice versa (read independently)`, () => {
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { type: string; default: unknown }> };
    const rows = new Map<string, string[]>();
    for (const line of docTable().split("\n").slice(2)) {
        const cells = line
            .split(/(?<!\\)\|/)
            .slice(1, -1)
            .map((c) => c.trim());
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

void test("the README points at the config reference instead of holding a second copy", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    assert.ok(readme.includes(CONFIG_DOC), `README.md links to ${CONFIG_DOC}`);
    assert.ok(!readme.includes("<!-- config-table -->"), "README.md holds no config table of its own (it would drift)");
});
