/**
 * The migration classifier (lib/migrations/classify.py, run by classify.ts with the real python3):
 * on the files Django's makemigrations wrote for each operation (tests/fixtures/migrations, see its
 * README), and on hand-written edge cases (aliases, nested operations, data migrations, files
 * Django would not load).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { classifyMigrations, classifyMigrationSet, decidingOperations, type ClassifiedMigration } from "../../lib/migrations";
import { isolateCache, makeTree } from "./inputs.fixtures";

const FIXTURES = path.resolve(__dirname, "../fixtures/migrations");
const CHAIN = path.join(FIXTURES, "makemigrations");

function chainFiles(): string[] {
    return fs
        .readdirSync(path.join(CHAIN, "records/migrations"))
        .sort()
        .map((f) => `records/migrations/${f}`);
}

/** Classifies a hand-written tree of files; returns the migrations by id. */
async function classifyTree(tree: Record<string, string>): Promise<Map<string, ClassifiedMigration>> {
    const dir = makeTree(tree);
    const got = await classifyMigrations(dir, Object.keys(tree));
    return new Map(got.map((m) => [m.id, m]));
}

/** A migration file with these imports and operations (the body of `operations = [...]`). */
function migration(ops: string, imports = "from django.db import migrations, models", extra = ""): string {
    return `${imports}\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("shop", "0001_initial")]\n${extra}\n    operations = [\n${ops}\n    ]\n`;
}

/** [class, operations that decided it] of one migration. */
function verdict(m: ClassifiedMigration | undefined): [string, string[]] {
    assert.ok(m, "migration classified");
    return [m.class, decidingOperations(m).map((o) => o.operation)];
}

void test("makemigrations output: every operation class, judged with the earlier migrations' state", async () => {
    const got = await classifyMigrations(CHAIN, chainFiles());
    const table = Object.fromEntries(got.map((m) => [m.id, verdict(m)]));
    assert.deepEqual(table, {
        "records.0001_initial": ["expand", []],
        "records.0002_patient_email": ["expand", []], // AddField null=True
        "records.0003_patient_active": ["expand", []], // AddField db_default=True
        "records.0004_patient_priority": ["contract", ["AddField"]], // default=0 only: Django drops the database default after the backfill
        "records.0005_encounter_ward": ["contract", ["AddField"]], // one-off default, preserve_default=False
        "records.0006_encounter_kind_idx": ["expand", []], // AddIndex
        "records.0007_patient_unique_name_dob": ["contract", ["AddConstraint"]],
        "records.0008_patient_dob_nullable": ["expand", []], // AlterField adds null=True
        "records.0009_patient_email_required": ["contract", ["AlterField"]], // AlterField drops null
        "records.0010_encounter_notes_char": ["contract", ["AlterField"]], // TextField -> CharField
        "records.0011_patient_family_name_longer": ["expand", []], // max_length 100 -> 200
        "records.0012_rename_mrn": ["contract", ["RenameField"]],
        "records.0013_remove_encounter_notes": ["contract", ["RemoveField"]],
        "records.0014_ward": ["expand", []], // CreateModel
        "records.0015_rename_ward_unit": ["contract", ["RenameModel"]],
        "records.0016_delete_unit": ["contract", ["DeleteModel"]],
        "records.0017_remove_kind_idx": ["expand", []], // RemoveIndex
        "records.0018_remove_unique_name_dob": ["expand", []], // RemoveConstraint
        "records.0019_patient_ordering": ["expand", []], // AlterModelOptions
        "records.0020_empty": ["expand", []], // makemigrations --empty
    });
    // The operation each file holds, as Django wrote it (so a fixture regenerated differently fails here, not silently).
    const ops = Object.fromEntries(got.map((m) => [m.name, m.operations.map((o) => o.operation).join(",")]));
    assert.equal(ops["0001_initial"], "CreateModel,CreateModel");
    assert.equal(ops["0009_patient_email_required"], "AlterField");
    assert.equal(ops["0017_remove_kind_idx"], "RemoveIndex");
    assert.equal(ops["0019_patient_ordering"], "AlterModelOptions");
    assert.equal(ops["0020_empty"], "");
    // Ids, paths, dependencies and dependency order.
    const m9 = got.find((m) => m.name === "0009_patient_email_required")!;
    assert.equal(m9.app, "records");
    assert.equal(m9.path, "records/migrations/0009_patient_email_required.py");
    assert.deepEqual(m9.dependencies, [["records", "0008_patient_dob_nullable"]]);
    assert.deepEqual(
        got.map((m) => m.name),
        [...got.map((m) => m.name)].sort(),
    );
    assert.equal(got.find((m) => m.name === "0001_initial")!.initial, true);
});

void test("reasons and fixes say what breaks for the serving release and the expand/contract way", async () => {
    const got = new Map((await classifyMigrations(CHAIN, chainFiles())).map((m) => [m.name, m]));
    const op = (name: string) => got.get(name)!.operations[0];
    assert.match(
        op("0004_patient_priority").reason,
        /adds patient\.priority NOT NULL without a db_default \(default= fills the existing rows, then Django drops the database default\): the serving release's inserts omit it and fail/,
    );
    assert.match(op("0004_patient_priority").fix!, /db_default=/);
    assert.match(op("0009_patient_email_required").reason, /drops null from patient\.email/);
    assert.match(op("0010_encounter_notes_char").reason, /changes the type of encounter\.notes from TextField to CharField/);
    assert.match(op("0013_remove_encounter_notes").reason, /drops column encounter\.notes: the serving release still selects it/);
    assert.match(op("0013_remove_encounter_notes").fix!, /SeparateDatabaseAndState\(state_operations=\[RemoveField/);
    assert.equal(op("0013_remove_encounter_notes").line, 13);
    assert.match(op("0012_rename_mrn").summary, /^RenameField patient\.medical_record_number -> mrn$/);
    assert.equal(op("0002_patient_email").fix, undefined, "expand operations need no fix");
});

void test("AlterField without the field's earlier definition is unknown, not guessed", async () => {
    const alone = await classifyMigrations(CHAIN, ["records/migrations/0008_patient_dob_nullable.py", "records/migrations/0011_patient_family_name_longer.py"]);
    for (const m of alone) {
        assert.equal(m.class, "unknown", m.name);
        assert.match(m.operations[0].reason, /previous definition is not in the migrations read/);
    }
});

void test("the RemoveField fixture written against the example app is contract", async () => {
    const [m] = await classifyMigrations(path.join(FIXTURES, "example-remove-field"), ["records/migrations/0002_remove_encounter_notes.py"]);
    assert.equal(m.id, "records.0002_remove_encounter_notes");
    assert.deepEqual(verdict(m), ["contract", ["RemoveField"]]);
    assert.deepEqual(m.dependencies, [["records", "0001_initial"]]);
});

void test("import aliases resolve to Django's operations; look-alikes from elsewhere are unknown", async () => {
    const got = await classifyTree({
        "shop/migrations/0002_alias.py": migration(
            `        m.AddField(model_name="item", name="note", field=dm.CharField(max_length=10, null=True)),`,
            "from django.db import migrations as m, models as dm",
        ).replace("migrations.Migration", "m.Migration"),
        "shop/migrations/0003_alias_remove.py": migration(
            `        m.RemoveField(model_name="item", name="note"),`,
            "from django.db import migrations as m",
        ).replace("migrations.Migration", "m.Migration"),
        "shop/migrations/0004_direct.py": migration(
            `        AddField("item", "size", models.IntegerField(null=True)),\n        RemoveField("item", "colour"),`,
            "from django.db import migrations, models\nfrom django.db.migrations import AddField, RemoveField",
        ),
        "shop/migrations/0005_dotted.py": migration(
            `        django.db.migrations.operations.AddIndex(model_name="item", index=None),`,
            "import django.db.migrations\nfrom django.db import migrations",
        ),
        "shop/migrations/0006_lookalike.py": migration(
            `        AddField(model_name="item", name="x", field=models.IntegerField(null=True)),`,
            "from django.db import migrations, models\nfrom shop.ops import AddField",
        ),
        "shop/migrations/0007_star.py": migration(
            `        CreateModel(name="Tag", fields=[]),`,
            "from django.db import migrations\nfrom django.db.migrations.operations import *",
        ),
    });
    assert.deepEqual(verdict(got.get("shop.0002_alias")), ["expand", []]);
    assert.deepEqual(verdict(got.get("shop.0003_alias_remove")), ["contract", ["RemoveField"]]);
    assert.deepEqual(verdict(got.get("shop.0004_direct")), ["contract", ["RemoveField"]]);
    assert.deepEqual(
        got.get("shop.0004_direct")!.operations.map((o) => [o.operation, o.class]),
        [
            ["AddField", "expand"],
            ["RemoveField", "contract"],
        ],
    );
    assert.deepEqual(verdict(got.get("shop.0005_dotted")), ["expand", []]);
    assert.deepEqual(verdict(got.get("shop.0006_lookalike")), ["unknown", ["AddField"]]);
    assert.match(got.get("shop.0006_lookalike")!.operations[0].reason, /shop\.ops\.AddField is not one of Django's migration operations/);
    assert.deepEqual(verdict(got.get("shop.0007_star")), ["expand", []]);
});

void test("AddField: nullable, db_default, many-to-many and generated are expand; NOT NULL without db_default is contract", async () => {
    const add = (field: string) => `        migrations.AddField(model_name="item", name="f", field=${field}),`;
    const got = await classifyTree({
        "shop/migrations/0002_a.py": migration(add("models.CharField(null=True)")),
        "shop/migrations/0003_b.py": migration(add("models.IntegerField(db_default=0)")),
        "shop/migrations/0004_c.py": migration(add('models.ManyToManyField(to="shop.tag")')),
        "shop/migrations/0005_d.py": migration(add('models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="shop.tag")')),
        "shop/migrations/0006_e.py": migration(add("models.BooleanField(default=False)")),
        "shop/migrations/0007_f.py": migration(add("models.CharField(null=NULLABLE)")),
        "shop/migrations/0008_g.py": migration(add("make_field()")),
        "shop/migrations/0009_h.py": migration(add("models.CharField(null=False, max_length=3)")),
    });
    assert.equal(got.get("shop.0002_a")!.class, "expand");
    assert.equal(got.get("shop.0003_b")!.class, "expand");
    assert.equal(got.get("shop.0004_c")!.class, "expand");
    assert.equal(got.get("shop.0005_d")!.class, "contract");
    assert.equal(got.get("shop.0006_e")!.class, "contract");
    assert.equal(got.get("shop.0007_f")!.class, "unknown", "a null= that is not a literal");
    assert.equal(got.get("shop.0008_g")!.class, "unknown", "a field that is not a field call");
    assert.equal(got.get("shop.0009_h")!.class, "contract");
});

void test("AlterField is judged against the definition the earlier migrations give", async () => {
    const create = `        migrations.CreateModel(name="Item", fields=[("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=20)), ("label", models.CharField(max_length=20, null=True, db_column="lbl"))]),`;
    const alter = (field: string, name = "code") => `        migrations.AlterField(model_name="item", name="${name}", field=${field}),`;
    const got = await classifyTree({
        "shop/migrations/0001_initial.py": migration(create).replace('dependencies = [("shop", "0001_initial")]', "dependencies = []"),
        "shop/migrations/0002_help.py": migration(alter('models.CharField(max_length=20, help_text="the code", verbose_name="Code")')).replace(
            "0001_initial",
            "0001_initial",
        ),
        "shop/migrations/0003_unique.py": migration(alter("models.CharField(max_length=20, unique=True)")).replace('"0001_initial"', '"0002_help"'),
        "shop/migrations/0004_shorter.py": migration(alter("models.CharField(max_length=10, unique=True)")).replace('"0001_initial"', '"0003_unique"'),
        "shop/migrations/0005_column.py": migration(alter('models.CharField(max_length=20, null=True, db_column="label")', "label")).replace(
            '"0001_initial"',
            '"0004_shorter"',
        ),
        "shop/migrations/0006_collation.py": migration(alter('models.CharField(max_length=10, unique=True, db_collation="C")')).replace(
            '"0001_initial"',
            '"0005_column"',
        ),
    });
    assert.deepEqual(verdict(got.get("shop.0002_help")), ["expand", []]);
    assert.deepEqual(verdict(got.get("shop.0003_unique")), ["contract", ["AlterField"]]);
    assert.match(got.get("shop.0003_unique")!.operations[0].reason, /makes item\.code unique/);
    assert.match(got.get("shop.0004_shorter")!.operations[0].reason, /narrows max_length of item\.code/);
    assert.match(got.get("shop.0005_column")!.operations[0].reason, /renames the column of item\.label \(db_column\)/);
    assert.equal(got.get("shop.0006_collation")!.class, "unknown");
});

void test("RunPython and RunSQL are unknown unless they are no-ops; the worst operation decides", async () => {
    const got = await classifyTree({
        "shop/migrations/0002_data.py": `from django.db import migrations\n\n\ndef forwards(apps, schema_editor):\n    apps.get_model("shop", "Item").objects.update(active=True)\n\n\ndef backwards(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("shop", "0001_initial")]\n    operations = [\n        migrations.AddIndex(model_name="item", index=None),\n        migrations.RunPython(forwards, reverse_code=backwards),\n        migrations.RemoveField(model_name="item", name="old"),\n    ]\n`,
        "shop/migrations/0003_noop.py": migration(
            `        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),\n        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql="DROP TABLE x"),`,
        ),
        "shop/migrations/0004_sql.py": migration(`        migrations.RunSQL("ALTER TABLE shop_item DROP COLUMN old", reverse_sql=migrations.RunSQL.noop),`),
    });
    const data = got.get("shop.0002_data")!;
    assert.deepEqual(verdict(data), ["unknown", ["RunPython"]]);
    assert.deepEqual(
        data.operations.map((o) => o.class),
        ["expand", "unknown", "contract"],
    );
    assert.match(data.operations[1].summary, /^RunPython forwards$/);
    assert.equal(data.operations[1].line, 16);
    assert.deepEqual(verdict(got.get("shop.0003_noop")), ["expand", []]);
    assert.deepEqual(verdict(got.get("shop.0004_sql")), ["unknown", ["RunSQL"]]);
});

void test("SeparateDatabaseAndState is judged by its database operations only", async () => {
    const got = await classifyTree({
        "shop/migrations/0002_state_only.py": migration(
            `        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField(model_name="item", name="old")]),`,
        ),
        "shop/migrations/0003_db.py": migration(
            `        migrations.SeparateDatabaseAndState(\n            database_operations=[migrations.AddIndex(model_name="item", index=None), migrations.RemoveField(model_name="item", name="old")],\n            state_operations=[],\n        ),`,
        ),
    });
    assert.deepEqual(verdict(got.get("shop.0002_state_only")), ["expand", []]);
    assert.match(got.get("shop.0002_state_only")!.operations[0].reason, /state only/);
    const db = got.get("shop.0003_db")!;
    assert.deepEqual(verdict(db), ["contract", ["RemoveField"]], "the nested database operation decides");
    assert.deepEqual(
        db.operations.map((o) => o.index),
        ["0", "0.database_operations.0", "0.database_operations.1"],
    );
});

void test("operations Django cannot apply, files that do not parse, and files Django does not load", async () => {
    const dir = makeTree({
        "shop/migrations/__init__.py": "",
        "shop/migrations/_helpers.py": "X = 1\n",
        "shop/migrations/~0009_backup.py": "X = 1\n",
        "shop/db_migrations/0001_initial.py": migration(`        migrations.CreateModel(name="Item", fields=[]),`),
        "shop/migrations/0002_nested.py": migration(`        [migrations.AddField(model_name="item", name="n", field=models.IntegerField(null=True))],`),
        "shop/migrations/0003_concat.py": `from django.db import migrations, models\n\nCOMMON = []\n\n\nclass Migration(migrations.Migration):\n    dependencies = []\n    operations = [migrations.AddIndex(model_name="item", index=None)] + [migrations.DeleteModel(name="Old")]\n`,
        "shop/migrations/0004_variable.py": `from django.db import migrations\n\nOPS = [migrations.DeleteModel(name="Old")]\n\n\nclass Migration(migrations.Migration):\n    operations = OPS\n`,
        "shop/migrations/0005_broken.py": "class Migration(:\n",
        "shop/migrations/0006_no_class.py": "from django.db import migrations\n",
        "shop/migrations/0007_empty.py": migration(""),
    });
    const all = await classifyMigrations(
        dir,
        fs
            .readdirSync(path.join(dir, "shop/migrations"))
            .map((f) => `shop/migrations/${f}`)
            .concat(["shop/db_migrations/0001_initial.py"]),
    );
    const got = new Map(all.filter((m) => m.path.startsWith("shop/migrations/")).map((m) => [m.name, m]));
    assert.deepEqual([...got.keys()].sort(), ["0002_nested", "0003_concat", "0004_variable", "0005_broken", "0006_no_class", "0007_empty"]);
    // A MIGRATION_MODULES package under another name (when migrationGlobs match it) belongs to the app above it.
    assert.deepEqual(
        all.filter((m) => !m.path.startsWith("shop/migrations/")).map((m) => [m.id, m.class]),
        [["shop.0001_initial", "expand"]],
    );
    assert.match(got.get("0002_nested")!.operations[0].reason, /a list inside the operations list/);
    assert.equal(got.get("0002_nested")!.class, "unknown");
    assert.deepEqual(verdict(got.get("0003_concat")), ["contract", ["DeleteModel"]]);
    assert.equal(got.get("0004_variable")!.class, "unknown");
    assert.match(got.get("0005_broken")!.operations[0].reason, /^does not parse: /);
    assert.match(got.get("0006_no_class")!.operations[0].reason, /has no class Migration/);
    assert.deepEqual(verdict(got.get("0007_empty")), ["expand", []]);
});

void test("the app label comes from AppConfig.label when apps.py sets one; squashes carry what they replace", async () => {
    const got = await classifyTree({
        "apps/billing/apps.py": `from django.apps import AppConfig\n\n\nclass BillingConfig(AppConfig):\n    name = "apps.billing"\n    label = "invoices"\n`,
        "apps/billing/migrations/0001_squashed_0003.py": migration(
            `        migrations.CreateModel(name="Invoice", fields=[]),`,
            undefined,
            `    replaces = [("invoices", "0001_initial"), ("invoices", "0002_x"), ("invoices", "0003_y")]`,
        ),
    });
    const m = got.get("invoices.0001_squashed_0003");
    assert.ok(m, [...got.keys()].join(","));
    assert.deepEqual(m.replaces, [
        ["invoices", "0001_initial"],
        ["invoices", "0002_x"],
        ["invoices", "0003_y"],
    ]);
});

void test("AlterUniqueTogether: removing entries relaxes, adding one is contract", async () => {
    const got = await classifyTree({
        "shop/migrations/0001_initial.py": migration(
            `        migrations.CreateModel(name="Item", fields=[], options={"unique_together": {("a", "b"), ("c", "d")}}),`,
        ).replace('dependencies = [("shop", "0001_initial")]', "dependencies = []"),
        "shop/migrations/0002_less.py": migration(`        migrations.AlterUniqueTogether(name="item", unique_together={("a", "b")}),`),
        "shop/migrations/0003_more.py": migration(`        migrations.AlterUniqueTogether(name="item", unique_together={("a", "b"), ("e", "f")}),`).replace(
            '"0001_initial"',
            '"0002_less"',
        ),
    });
    assert.equal(got.get("shop.0002_less")!.class, "expand");
    assert.equal(got.get("shop.0003_more")!.class, "contract");
});

void test("a missing interpreter fails with the input, the value and the fix", async () => {
    await assert.rejects(classifyMigrations(CHAIN, chainFiles(), { ...process.env, THINLAYER_PYTHON: "/nonexistent/python3" }), (e: Error) => {
        assert.equal(
            e.message,
            'THINLAYER_PYTHON: got "/nonexistent/python3" (not found); expected a Python 3.8+ interpreter, which classifies the Django migrations a deploy applies (lib/migrations/classify.py). Fix: install python3 (Debian/Ubuntu: apt-get install python3; it needs no packages), or set THINLAYER_PYTHON to an interpreter\'s path',
        );
        return true;
    });
    const noPath: NodeJS.ProcessEnv = { ...process.env, PATH: makeTree({}) };
    delete noPath.THINLAYER_PYTHON;
    await assert.rejects(classifyMigrations(CHAIN, chainFiles(), noPath), /^ThinlayerError: python3: got "python3" \(not found\)/);
});

test("classifyMigrationSet reuses the verdicts of an unchanged set (no Python runs), and classifies again when a file changes or the cache is off", async () => {
    const cache = isolateCache();
    const dir = makeTree({ "shop/migrations/0002_x.py": migration("        migrations.RemoveField(model_name='order', name='note'),") });
    // An interpreter that counts its runs, then is python3.
    const runs = path.join(dir, "runs.log");
    const python = path.join(dir, "python-counting");
    fs.writeFileSync(python, `#!/bin/sh\necho run >> ${JSON.stringify(runs)}\nexec python3 "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, THINLAYER_PYTHON: python };
    const count = () =>
        fs.existsSync(runs)
            ? fs
                  .readFileSync(runs, "utf8")
                  .split("\n")
                  .filter((l) => l !== "").length
            : 0;
    const set = (hash: string) => ({ hash: hash.repeat(64), files: [{ path: "shop/migrations/0002_x.py" }] });

    const first = await classifyMigrationSet(dir, set("a"), { env });
    assert.equal(verdict(first[0])[0], "contract");
    assert.equal(count(), 1);
    assert.equal(fs.readdirSync(path.join(cache, "migrations")).length, 1, "one cache file per app directory");
    assert.deepEqual(await classifyMigrationSet(dir, set("a"), { env }), first);
    assert.equal(count(), 1, "the same set: served from the cache, no Python run");
    await classifyMigrationSet(dir, set("b"), { env });
    assert.equal(count(), 2, "another set (a file changed): classified again");
    await classifyMigrationSet(dir, set("b"), { env, cache: false });
    assert.equal(count(), 3, "cache off (--no-cache): classified again");
    await classifyMigrationSet(dir, set("b"), { env: { ...env, THINLAYER_SNAPSHOTS: "0" } });
    assert.equal(count(), 4, "THINLAYER_SNAPSHOTS=0: classified again");
    await classifyMigrationSet(dir, set("b"), { env: { ...env, THINLAYER_PYTHON: "python3" } });
    assert.equal(count(), 4, "another interpreter: classified again (by it, not by the counting one)");
    await classifyMigrationSet(dir, set("b"), { env });
    assert.equal(count(), 5, "back to the counting interpreter: the cache now holds python3's verdicts, so it runs again");
    assert.equal(fs.readdirSync(path.join(cache, "migrations")).length, 1, "the file is overwritten, not added to");
    // An AppConfig label renames the app's migration ids: apps.py is read too, so it keys the verdicts.
    fs.writeFileSync(
        path.join(dir, "shop", "apps.py"),
        'from django.apps import AppConfig\n\n\nclass ShopConfig(AppConfig):\n    name = "shop"\n    label = "store"\n',
    );
    const relabelled = await classifyMigrationSet(dir, set("b"), { env });
    assert.equal(count(), 6, "apps.py changed: classified again");
    assert.match(relabelled[0].id, /^store\./);
});
