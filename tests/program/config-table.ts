/**
 * Renders the README's config reference from Pulumi.yaml's schema (the one source of truth). Run
 * `node --import tsx tests/program/config-table.ts` to print it; readme-config.test.ts checks that
 * the README's table is exactly this.
 */
import * as path from "node:path";
import { loadProjectSchema, PROJECT, SECRET_KEYS, type ConfigSchema } from "../../lib/config";

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** Markdown table: one row per key, in Pulumi.yaml order. */
export function renderConfigTable(schema: ConfigSchema): string {
    const rows = Object.entries(schema).map(([key, e]) => {
        const type = e.type === "array" ? "list of strings" : e.type;
        const dflt = typeof e.default === "string" ? (e.default === "" ? '`""`' : `\`${e.default}\``) : `\`${JSON.stringify(e.default)}\``;
        return `| \`${PROJECT}:${key}\` | ${type}${SECRET_KEYS.has(key) ? " (secret)" : ""} | ${cell(dflt)} | ${cell(e.description)} |`;
    });
    return ["| Key | Type | Default | Description |", "|---|---|---|---|", ...rows].join("\n");
}

if (require.main === module) process.stdout.write(renderConfigTable(loadProjectSchema(path.resolve(__dirname, "..", ".."))) + "\n");
