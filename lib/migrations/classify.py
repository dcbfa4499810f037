#!/usr/bin/env python3
"""Classifies Django migration operations as expand, contract or unknown, statically.

Reads the migration files with Python's own `ast` module: nothing is imported or run, so neither
Django nor the app's dependencies need to be installed where a deploy is planned. Standard library
only; Python 3.8+.

    python3 classify.py ROOT PATH...            (PATHs relative to ROOT)
    echo '{"root": ROOT, "paths": [...]}' | python3 classify.py -

Prints one JSON object: {"schema": 1, "migrations": [...]}, each migration with its app label and
name (from its path: <app>/migrations/<name>.py, the label overridden by a literal `label = "..."`
in <app>/apps.py), its dependencies and replaces, its operations (each with a class, the reason and
the expand/contract fix) and its class: the worst of its operations (unknown > contract > expand).

The classes, from the point of view of the release still serving while the migration runs (old and
new pods share one database during a rolling update, and a rollback runs old code on the new schema):
- expand: the serving release keeps working on the migrated schema;
- contract: it breaks (a dropped or renamed column or table, a NOT NULL column it does not write, a
  narrower type, a constraint its writes may violate);
- unknown: the classifier cannot tell (RunSQL, RunPython, operations it does not know).

AlterField is judged against the field's previous definition, which this script rebuilds from the
earlier migrations it is given (in dependency order), the way Django's autodetector state is built.
Without the previous definition an AlterField is unknown.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

SCHEMA = 1
RANK = {"expand": 0, "contract": 1, "unknown": 2}

DJANGO_OP_MODULES = (
    "django.db.migrations",
    "django.db.migrations.operations",
    "django.db.migrations.operations.fields",
    "django.db.migrations.operations.models",
    "django.db.migrations.operations.special",
    "django.contrib.postgres.operations",
)

# Field options that never change the schema the serving release sees (Django's Field.non_db_attrs
# minus db_column, plus options Django applies in Python only).
SAFE_FIELD_OPTIONS = {
    "blank", "choices", "editable", "error_messages", "help_text", "limit_choices_to", "on_delete",
    "related_name", "related_query_name", "validators", "verbose_name", "default", "db_index",
    "db_comment", "db_tablespace", "auto_now", "auto_now_add", "upload_to", "storage", "serialize",
    "unique_for_date", "unique_for_month", "unique_for_year", "db_constraint", "max_upload_size",
    "width_field", "height_field", "path", "match", "recursive", "allow_files", "allow_folders",
    "protocol", "unpack_ipv4", "encoder", "decoder", "swappable", "parent_link",
}

FIX = {
    "remove_field": "expand/contract: first deploy code that no longer uses the field and drops it from Django's state only "
                    "(migrations.SeparateDatabaseAndState(state_operations=[RemoveField(...)]), with the column made null=True "
                    "or given a db_default so the new code's inserts work); drop the column in a later deploy, once no release "
                    "that reads it can serve or be rolled back to",
    "delete_model": "expand/contract: first deploy code that no longer uses the model (delete it from Django's state only with "
                    "SeparateDatabaseAndState); drop the table in a later deploy",
    "rename_field": "expand/contract: keep the column (set db_column to the old column name: the rename is then state only), or "
                    "add the new field nullable, write both, backfill, switch reads, and remove the old field in a later deploy",
    "rename_model": "expand/contract: keep the table (set Meta.db_table to the old table name before renaming the model), or create "
                    "the new model, copy the rows, switch the code, and delete the old model in a later deploy",
    "rename_table": "expand/contract: keep the old table name (Meta.db_table), or create the new table, copy, switch, and drop the "
                    "old one in a later deploy",
    "add_not_null": "expand/contract: add the column null=True, or with db_default=... (Django 5.0+; the database then fills it "
                    "for the release still serving; default= alone is Python-side and is dropped from the database after the "
                    "backfill); make it required in a later deploy, once every serving release writes it",
    "set_not_null": "expand/contract: first deploy code that always writes the field (and backfill NULLs with a RunPython), then "
                    "drop null in a later deploy; or give it a db_default",
    "narrow_type": "expand/contract: add a new field with the new type, write both, backfill, switch reads, and remove the old "
                   "field in a later deploy",
    "add_constraint": "expand/contract: first deploy code whose writes always satisfy the constraint (and fix existing rows), "
                      "then add the constraint in a later deploy (on PostgreSQL, AddConstraintNotValid + ValidateConstraint "
                      "avoid holding a lock while existing rows are checked)",
    "drop_db_default": "expand/contract: first deploy code that always writes the field, then remove the db_default in a later "
                       "deploy",
    "order_wrt": "expand/contract: order_with_respect_to adds or drops the NOT NULL _order column; add an explicit nullable "
                 "ordering field instead, or change it in a deploy after which no older release serves",
    "review": "review what it does to the tables the serving release reads and writes; make it backward-compatible (additive) "
              "or split it into an expand step now and a contract step in a later deploy",
}


def worst(classes):
    out = "expand"
    for c in classes:
        if RANK[c] > RANK[out]:
            out = c
    return out


class Imports:
    """Maps names bound at module level to the dotted paths they were imported from."""

    def __init__(self, tree: ast.Module):
        self.names: dict[str, str] = {}
        self.stars: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.names[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.names[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if a.name == "*":
                        self.stars.append(node.module)
                    else:
                        self.names[a.asname or a.name] = f"{node.module}.{a.name}"

    def dotted(self, expr: ast.AST) -> str | None:
        """The dotted path an expression names (`m.AddField` -> django.db.migrations.AddField), if it is one."""
        if isinstance(expr, ast.Name):
            if expr.id in self.names:
                return self.names[expr.id]
            for mod in self.stars:
                if mod in DJANGO_OP_MODULES:
                    return f"{mod}.{expr.id}"
            return None
        if isinstance(expr, ast.Attribute):
            base = self.dotted(expr.value)
            return None if base is None else f"{base}.{expr.attr}"
        return None

    def django_op(self, call: ast.Call) -> str | None:
        """The Django operation class a call constructs (`AddField`), or None if it is not one of Django's."""
        path = self.dotted(call.func)
        if path is None:
            return None
        mod, _, name = path.rpartition(".")
        return name if mod in DJANGO_OP_MODULES else None


def literal(node: ast.AST | None, default=None):
    """(ok, value) of a literal expression; ok is False for anything that is not a plain literal."""
    if node is None:
        return True, default
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def kwargs_of(call: ast.Call) -> dict[str, ast.AST]:
    return {k.arg: k.value for k in call.keywords if k.arg is not None}


def arg(call: ast.Call, position: int, name: str) -> ast.AST | None:
    kw = kwargs_of(call)
    if name in kw:
        return kw[name]
    return call.args[position] if len(call.args) > position else None


def text_of(node: ast.AST | None) -> str | None:
    ok, v = literal(node)
    return v if ok and isinstance(v, str) else None


class Field:
    """A field definition as a migration writes it: `models.CharField(max_length=20, null=True)`."""

    def __init__(self, node: ast.AST):
        self.node = node
        self.call = node if isinstance(node, ast.Call) else None
        self.cls = None
        self.options: dict[str, ast.AST] = {}
        self.positional: list[str] = []
        if self.call is not None:
            f = self.call.func
            self.cls = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            self.options = kwargs_of(self.call)
            self.positional = [ast.dump(a) for a in self.call.args]

    def option(self, name: str, default=None):
        return literal(self.options.get(name), default)

    def same_option(self, other: "Field", name: str) -> bool:
        a, b = self.options.get(name), other.options.get(name)
        return (a is None and b is None) or (a is not None and b is not None and ast.dump(a) == ast.dump(b))


class State:
    """Per model (app, lowercased name): its fields and unique_together, as far as the migrations read define them."""

    def __init__(self):
        self.models: dict[tuple[str, str], dict] = {}

    def model(self, app: str, name: str | None, create: bool = False) -> dict | None:
        if name is None:
            return None
        key = (app, name.lower())
        if key not in self.models and create:
            self.models[key] = {"fields": {}, "unique_together": None}
        return self.models.get(key)

    def apply(self, app: str, op: str, call: ast.Call, imports: Imports) -> None:
        """Moves the state forward over one operation (its state effect; database effects do not matter here)."""
        if op == "CreateModel":
            m = self.model(app, text_of(arg(call, 0, "name")), create=True)
            fields = arg(call, 1, "fields")
            if m is not None and isinstance(fields, (ast.List, ast.Tuple)):
                for item in fields.elts:
                    if isinstance(item, ast.Tuple) and len(item.elts) == 2:
                        fname = text_of(item.elts[0])
                        if fname is not None:
                            m["fields"][fname] = Field(item.elts[1])
            options = arg(call, 2, "options")
            if m is not None and isinstance(options, ast.Dict):
                for k, v in zip(options.keys, options.values):
                    if text_of(k) == "unique_together":
                        m["unique_together"] = together(v)
        elif op == "DeleteModel":
            name = text_of(arg(call, 0, "name"))
            if name is not None:
                self.models.pop((app, name.lower()), None)
        elif op == "RenameModel":
            old, new = text_of(arg(call, 0, "old_name")), text_of(arg(call, 1, "new_name"))
            if old is not None and new is not None and (app, old.lower()) in self.models:
                self.models[(app, new.lower())] = self.models.pop((app, old.lower()))
        elif op in ("AddField", "AlterField"):
            m = self.model(app, text_of(arg(call, 0, "model_name")), create=(op == "AddField"))
            fname, field = text_of(arg(call, 1, "name")), arg(call, 2, "field")
            if m is not None and fname is not None and field is not None:
                m["fields"][fname] = Field(field)
        elif op == "RemoveField":
            m = self.model(app, text_of(arg(call, 0, "model_name")))
            fname = text_of(arg(call, 1, "name"))
            if m is not None and fname is not None:
                m["fields"].pop(fname, None)
        elif op == "RenameField":
            m = self.model(app, text_of(arg(call, 0, "model_name")))
            old, new = text_of(arg(call, 1, "old_name")), text_of(arg(call, 2, "new_name"))
            if m is not None and old in m["fields"] and new is not None:
                m["fields"][new] = m["fields"].pop(old)
        elif op == "AlterUniqueTogether":
            m = self.model(app, text_of(arg(call, 0, "name")), create=True)
            if m is not None:
                m["unique_together"] = together(arg(call, 1, "unique_together"))
        elif op == "SeparateDatabaseAndState":
            for sub in op_calls(arg(call, 1, "state_operations")):
                name = imports.django_op(sub)
                if name is not None:
                    self.apply(app, name, sub, imports)


def together(node: ast.AST | None):
    """unique_together as a set of tuples (Django normalises one tuple to a set of one), or None if not literal."""
    ok, v = literal(node, default=set())
    if not ok:
        return None
    if v is None:
        return set()
    items = list(v) if isinstance(v, (set, list, tuple)) else []
    if items and all(isinstance(x, str) for x in items):
        items = [tuple(items)]
    return {tuple(x) for x in items if isinstance(x, (list, tuple))}


def op_calls(node: ast.AST | None) -> list:
    """The elements of an operations list literal (lists, tuples and `+` of them)."""
    if node is None:
        return []
    if isinstance(node, (ast.List, ast.Tuple)):
        return list(node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return op_calls(node.left) + op_calls(node.right)
    return [node]


def result(cls: str, reason: str, fix: str | None = None) -> dict:
    out = {"class": cls, "reason": reason}
    if cls != "expand":
        out["fix"] = fix or FIX["review"]
    return out


def add_field(model: str, name: str, field_node: ast.AST | None) -> dict:
    f = Field(field_node) if field_node is not None else None
    target = f"{model}.{name}"
    if f is None or f.call is None or f.cls is None or not (f.cls.endswith("Field") or f.cls in ("ForeignKey", "ForeignObject")):
        return result("unknown", f"adds {target} with a field that is not a literal field call (models.<Name>Field(...))")
    if f.cls == "ManyToManyField":
        return result("expand", f"adds {target}, a many-to-many field: a new join table the serving release never reads")
    if f.cls == "GeneratedField":
        return result("expand", f"adds {target}, a generated column the database computes")
    ok, null = f.option("null", False)
    if not ok:
        return result("unknown", f"adds {target} with a null= that is not a literal")
    if null is True:
        return result("expand", f"adds {target} nullable: the serving release's inserts leave it NULL")
    if "db_default" in f.options:
        return result("expand", f"adds {target} with a db_default: the database fills it for the serving release's inserts")
    how = " (default= fills the existing rows, then Django drops the database default)" if "default" in f.options else ""
    return result("contract", f"adds {target} NOT NULL without a db_default{how}: the serving release's inserts omit it and fail", FIX["add_not_null"])


def number_change(old: Field, new: Field, name: str):
    """'wider' / 'narrower' / 'same' / None (not literal) for an integer option such as max_length."""
    ok1, a = old.option(name)
    ok2, b = new.option(name)
    if not (ok1 and ok2) or not all(x is None or isinstance(x, int) for x in (a, b)):
        return None
    if a == b:
        return "same"
    # None means unlimited (a TextField-like CharField on PostgreSQL).
    if b is None or (a is not None and b > a):
        return "wider"
    return "narrower"


def alter_field(model: str, name: str, old: Field | None, new_node: ast.AST | None) -> dict:
    target = f"{model}.{name}"
    new = Field(new_node) if new_node is not None else None
    if new is None or new.call is None:
        return result("unknown", f"alters {target} to a field that is not a literal field call")
    if old is None or old.call is None:
        return result("unknown", f"alters {target}, whose previous definition is not in the migrations read (so what changes is not known)")
    if old.cls != new.cls:
        return result("contract", f"changes the type of {target} from {old.cls} to {new.cls}: the serving release reads and writes the old type", FIX["narrow_type"])
    if old.positional != new.positional:
        return result("unknown", f"alters positional arguments of {target}")
    findings = []
    for opt in sorted(set(old.options) | set(new.options)):
        if old.same_option(new, opt) or opt in SAFE_FIELD_OPTIONS:
            continue
        if opt == "null":
            ok1, a = old.option("null", False)
            ok2, b = new.option("null", False)
            if not (ok1 and ok2):
                findings.append(result("unknown", f"alters null= of {target} to a value that is not a literal"))
            elif a and not b:
                findings.append(result("contract", f"drops null from {target} (SET NOT NULL): the serving release may write NULL", FIX["set_not_null"]))
            elif b and not a:
                findings.append(result("expand", f"makes {target} nullable (only relaxes)"))
        elif opt in ("max_length", "max_digits", "decimal_places"):
            change = number_change(old, new, opt)
            if change == "wider":
                findings.append(result("expand", f"widens {opt} of {target} (only relaxes)"))
            elif change == "narrower":
                findings.append(result("contract", f"narrows {opt} of {target}: the serving release may write values that no longer fit", FIX["narrow_type"]))
            else:
                findings.append(result("unknown", f"alters {opt} of {target} to a value that is not a literal integer"))
        elif opt == "unique":
            ok1, a = old.option("unique", False)
            ok2, b = new.option("unique", False)
            if not (ok1 and ok2):
                findings.append(result("unknown", f"alters unique= of {target} to a value that is not a literal"))
            elif b and not a:
                findings.append(result("contract", f"makes {target} unique: the serving release's writes of duplicates fail", FIX["add_constraint"]))
            else:
                findings.append(result("expand", f"drops the unique constraint of {target} (only relaxes)"))
        elif opt == "db_default":
            if opt in new.options and opt not in old.options:
                findings.append(result("expand", f"gives {target} a db_default"))
            elif opt in new.options:
                findings.append(result("expand", f"changes the db_default of {target}"))
            else:
                ok, null = new.option("null", False)
                findings.append(result("expand", f"drops the db_default of nullable {target}") if ok and null is True
                                else result("contract", f"drops the db_default of {target}: the serving release's inserts rely on it", FIX["drop_db_default"]))
        elif opt == "db_column":
            findings.append(result("contract", f"renames the column of {target} (db_column): the serving release queries the old name", FIX["rename_field"]))
        elif opt in ("primary_key", "to", "to_field", "through", "db_collation", "expression", "output_field", "db_persist"):
            findings.append(result("contract" if opt in ("primary_key", "to", "to_field") else "unknown",
                                   f"alters {opt} of {target}", FIX["narrow_type"]))
        else:
            findings.append(result("unknown", f"alters {opt} of {target}, an option the classifier does not know"))
    if not findings:
        return result("expand", f"alters only options of {target} that do not change the schema")
    cls = worst(f["class"] for f in findings)
    decided = [f for f in findings if f["class"] == cls]
    out = result(cls, "; ".join(f["reason"] for f in decided), decided[0].get("fix"))
    return out


def is_noop(imports: Imports, node: ast.AST | None, kind: str) -> bool:
    if node is None:
        return False
    path = imports.dotted(node)
    if path is not None and path.endswith(f"{kind}.noop") and path.rpartition(f".{kind}.noop")[0] in DJANGO_OP_MODULES:
        return True
    if kind == "RunSQL":
        ok, v = literal(node)
        return ok and v in ("", [], ())
    return False


def classify_op(app: str, op: str, call: ast.Call, state: State, imports: Imports) -> tuple[dict, str]:
    """(result, summary) of one Django operation, before its state effect is applied."""
    name_of = lambda pos, key: text_of(arg(call, pos, key)) or "?"  # noqa: E731
    if op == "CreateModel":
        return result("expand", f"creates table of model {name_of(0, 'name')}: the serving release never reads it"), f"CreateModel {name_of(0, 'name')}"
    if op == "DeleteModel":
        return result("contract", f"drops the table of model {name_of(0, 'name')}: the serving release still queries it", FIX["delete_model"]), f"DeleteModel {name_of(0, 'name')}"
    if op == "RenameModel":
        old, new = name_of(0, "old_name"), name_of(1, "new_name")
        return result("contract", f"renames model {old} to {new} (and its table): the serving release queries the old table", FIX["rename_model"]), f"RenameModel {old} -> {new}"
    if op == "AlterModelTable":
        return result("contract", f"renames the table of model {name_of(0, 'name')}: the serving release queries the old table", FIX["rename_table"]), f"AlterModelTable {name_of(0, 'name')}"
    if op in ("AlterModelOptions", "AlterModelManagers", "AlterModelTableComment", "AlterIndexTogether"):
        what = {"AlterModelOptions": "Python-side options only", "AlterModelManagers": "managers (Python only)",
                "AlterModelTableComment": "a table comment", "AlterIndexTogether": "indexes only"}[op]
        return result("expand", f"changes {what} of model {name_of(0, 'name')}"), f"{op} {name_of(0, 'name')}"
    if op == "AlterUniqueTogether":
        m = state.model(app, text_of(arg(call, 0, "name")))
        new = together(arg(call, 1, "unique_together"))
        old = m["unique_together"] if m is not None else None
        s = f"AlterUniqueTogether {name_of(0, 'name')}"
        if new is not None and old is not None and new <= old:
            return result("expand", f"removes unique_together entries of model {name_of(0, 'name')} (only relaxes)"), s
        if new == set():
            return result("expand", f"removes unique_together of model {name_of(0, 'name')}"), s
        return result("contract", f"sets unique_together of model {name_of(0, 'name')}, adding a unique constraint: the serving release's writes of duplicates fail", FIX["add_constraint"]), s
    if op == "AlterOrderWithRespectTo":
        return result("contract", f"changes order_with_respect_to of model {name_of(0, 'name')} (adds or drops the NOT NULL _order column)", FIX["order_wrt"]), f"{op} {name_of(0, 'name')}"
    if op in ("AddIndex", "AddIndexConcurrently"):
        return result("expand", f"adds an index on model {name_of(0, 'model_name')}"), f"{op} {name_of(0, 'model_name')}"
    if op in ("RemoveIndex", "RemoveIndexConcurrently", "RenameIndex"):
        return result("expand", f"{'renames' if op == 'RenameIndex' else 'drops'} index of model {name_of(0, 'model_name')} (queries still work)"), f"{op} {name_of(0, 'model_name')}"
    if op in ("AddConstraint", "AddConstraintNotValid"):
        c = arg(call, 1, "constraint")
        cname = text_of(kwargs_of(c).get("name")) if isinstance(c, ast.Call) else None
        return (result("contract", f"adds constraint {cname or '?'} on model {name_of(0, 'model_name')}: the serving release's writes that violate it fail", FIX["add_constraint"]),
                f"{op} {name_of(0, 'model_name')}.{cname or '?'}")
    if op in ("RemoveConstraint", "ValidateConstraint", "AlterConstraint"):
        what = {"RemoveConstraint": "drops", "ValidateConstraint": "validates existing rows against", "AlterConstraint": "alters Python-side attributes of"}[op]
        return result("expand", f"{what} constraint {name_of(1, 'name')} of model {name_of(0, 'model_name')}"), f"{op} {name_of(0, 'model_name')}.{name_of(1, 'name')}"
    if op == "AddField":
        model, field = name_of(0, "model_name"), name_of(1, "name")
        return add_field(model, field, arg(call, 2, "field")), f"AddField {model}.{field}"
    if op == "RemoveField":
        model, field = name_of(0, "model_name"), name_of(1, "name")
        return result("contract", f"drops column {model}.{field}: the serving release still selects it (Django names every column)", FIX["remove_field"]), f"RemoveField {model}.{field}"
    if op == "AlterField":
        model, field = name_of(0, "model_name"), name_of(1, "name")
        m = state.model(app, model)
        old = m["fields"].get(field) if m is not None else None
        return alter_field(model, field, old, arg(call, 2, "field")), f"AlterField {model}.{field}"
    if op == "RenameField":
        model, old, new = name_of(0, "model_name"), name_of(1, "old_name"), name_of(2, "new_name")
        return result("contract", f"renames column {model}.{old} to {new}: the serving release queries the old name", FIX["rename_field"]), f"RenameField {model}.{old} -> {new}"
    if op == "RunPython":
        code = arg(call, 0, "code")
        label = imports.dotted(code) or (code.id if isinstance(code, ast.Name) else "?")
        if is_noop(imports, code, "RunPython"):
            return result("expand", "RunPython.noop: does nothing forwards"), "RunPython noop"
        return result("unknown", f"runs Python ({label.rpartition('.')[2]}): what it does to the data cannot be read statically"), f"RunPython {label.rpartition('.')[2]}"
    if op == "RunSQL":
        if is_noop(imports, arg(call, 0, "sql"), "RunSQL"):
            return result("expand", "RunSQL.noop: does nothing forwards"), "RunSQL noop"
        return result("unknown", "runs SQL: what it changes cannot be read statically"), "RunSQL"
    if op in ("CreateExtension", "BloomExtension", "BtreeGinExtension", "BtreeGistExtension", "CITextExtension",
              "CryptoExtension", "HStoreExtension", "TrigramExtension", "UnaccentExtension", "CreateCollation"):
        return result("expand", f"{op}: adds a database extension or collation"), op
    return result("unknown", f"{op} is not an operation the classifier knows"), op


def classify_ops(app: str, nodes: list, state: State, imports: Imports, prefix: str) -> list:
    out = []
    for i, node in enumerate(nodes):
        where = f"{prefix}{i}"
        line = getattr(node, "lineno", None)
        if isinstance(node, (ast.List, ast.Tuple)):
            out.append({"index": where, "line": line, "operation": "(list)", "summary": "(nested list)",
                        **result("unknown", "a list inside the operations list: Django applies only Operation instances (migrate fails on it)")})
            continue
        if not isinstance(node, ast.Call):
            out.append({"index": where, "line": line, "operation": "(expression)", "summary": "(not a call)",
                        **result("unknown", "not an operation call the classifier can read (a variable or a computed value)")})
            continue
        op = imports.django_op(node)
        if op is None:
            shown = imports.dotted(node.func) or (node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:60])
            out.append({"index": where, "line": line, "operation": shown.rpartition(".")[2], "summary": shown,
                        **result("unknown", f"{shown} is not one of Django's migration operations (a custom operation)")})
            continue
        if op == "SeparateDatabaseAndState":
            db = classify_ops(app, op_calls(arg(node, 0, "database_operations")), state, imports, f"{where}.database_operations.")
            cls = worst(d["class"] for d in db) if db else "expand"
            reason = ("changes Django's state only, no database operation" if not db
                      else "its database operations: " + "; ".join(d["summary"] for d in db if d["class"] == cls))
            entry = {"index": where, "line": line, "operation": op, "summary": op, **result(cls, reason, next((d.get("fix") for d in db if d["class"] == cls), None))}
            out.append(entry)
            out.extend(db)
            state.apply(app, op, node, imports)
            continue
        res, summary = classify_op(app, op, node, state, imports)
        out.append({"index": where, "line": line, "operation": op, "summary": summary, **res})
        state.apply(app, op, node, imports)
    return out


def app_label(app_dir: Path, cache: dict) -> str:
    """The app label: the app directory's name, or a literal `label = "..."` in its apps.py (AppConfig.label)."""
    if app_dir in cache:
        return cache[app_dir]
    label = app_dir.name
    apps_py = app_dir / "apps.py"
    try:
        tree = ast.parse(apps_py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                            and stmt.targets[0].id == "label" and text_of(stmt.value)):
                        label = text_of(stmt.value)
    except (OSError, SyntaxError, ValueError):
        pass
    cache[app_dir] = label
    return label


def read_migration(root: Path, rel: str, labels: dict) -> dict | None:
    path = Path(rel)
    if path.suffix != ".py" or path.name[0] in "_~" or len(path.parts) < 2:
        return None  # Django's loader skips these (pkgutil modules starting with _ or ~)
    parts = path.parts
    # The app is the directory holding the migrations package: the last `migrations` directory's
    # parent, else (a MIGRATION_MODULES package under another name, matched by migrationGlobs) the
    # parent of the file's directory.
    dirs = parts[:-1]
    at = len(dirs) - 1 - dirs[::-1].index("migrations") if "migrations" in dirs else len(dirs) - 1
    app = app_label(root.joinpath(*parts[:at]), labels) if at > 0 else root.resolve().name
    entry = {"app": app, "name": path.stem, "path": rel, "dependencies": [], "replaces": [], "initial": False}
    try:
        source = (root / path).read_bytes()
        tree = ast.parse(source, filename=rel)
    except SyntaxError as e:
        entry["error"] = f"does not parse: {e.msg} (line {e.lineno})"
        return entry
    except OSError as e:
        entry["error"] = f"cannot be read: {e.strerror}"
        return entry
    entry["tree"] = tree
    return entry


def migration_body(entry: dict):
    """(imports, class body assignments) of the Migration class, or an error."""
    tree = entry["tree"]
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Migration"), None)
    if cls is None:
        return None, "has no class Migration (Django cannot load it)"
    body = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            body[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            body[stmt.target.id] = stmt.value
    return body, None


def pairs(node: ast.AST | None) -> list:
    out = []
    for item in op_calls(node):
        if isinstance(item, ast.Tuple) and len(item.elts) == 2:
            a, b = text_of(item.elts[0]), text_of(item.elts[1])
            if a is not None and b is not None:
                out.append([a, b])
    return out


def ordered(entries: list) -> list:
    """Dependency order (Django's graph), ties by (app, name): earlier definitions first for the state."""
    by_key = {(e["app"], e["name"]): e for e in entries}
    done, out = set(), []

    def visit(e, stack):
        key = (e["app"], e["name"])
        if key in done or key in stack:
            return
        stack.add(key)
        for dep in sorted(tuple(d) for d in e["dependencies"]):
            if dep in by_key:
                visit(by_key[dep], stack)
        stack.discard(key)
        done.add(key)
        out.append(e)

    for e in sorted(entries, key=lambda e: (e["app"], e["name"])):
        visit(e, set())
    return out


def classify(root: Path, rels: list) -> dict:
    labels: dict = {}
    entries = [e for e in (read_migration(root, r, labels) for r in rels) if e is not None]
    for e in entries:
        if "tree" in e:
            body, err = migration_body(e)
            if err:
                e["error"] = err
            else:
                e["body"] = body
                e["dependencies"] = pairs(body.get("dependencies"))
                e["replaces"] = pairs(body.get("replaces"))
                ok, initial = literal(body.get("initial"), False)
                e["initial"] = bool(initial) if ok else False
    state = State()
    out = []
    for e in ordered(entries):
        if "error" in e:
            ops = [{"index": "-", "line": None, "operation": "(file)", "summary": "(the file)", **result("unknown", e["error"])}]
        else:
            imports = Imports(e["tree"])
            node = e["body"].get("operations")
            ops = classify_ops(e["app"], op_calls(node), state, imports, "") if node is not None else []
        top = [o for o in ops if "." not in str(o["index"])]
        cls = worst(o["class"] for o in top) if top else "expand"
        out.append({
            "app": e["app"], "name": e["name"], "id": f"{e['app']}.{e['name']}", "path": e["path"],
            "dependencies": e["dependencies"], "replaces": e["replaces"], "initial": e["initial"],
            "class": cls, "operations": ops,
        })
    return {"schema": SCHEMA, "migrations": out}


def main(argv: list) -> int:
    if argv[1:2] == ["-"]:
        req = json.load(sys.stdin)
        root, rels = Path(req["root"]), list(req["paths"])
    elif len(argv) >= 2 and argv[1] not in ("-h", "--help"):
        root, rels = Path(argv[1]), argv[2:]
    else:
        sys.stderr.write(__doc__)
        return 2
    json.dump(classify(root, rels), sys.stdout, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
