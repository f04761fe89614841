"""PDC's GraphQL schema for the stand-in, built with graphql-core from the real SDL files in ``data/pdc``.

The bundled SDL (``query.gql`` and ten type files of ``esacinc/PDC-Public``, see ``data/pdc/SOURCES.md``) parses
as it is, but graphql-core cannot build a schema from it, because it references types whose files were not
copied and a custom scalar that PDC defines in code. The fix-ups, all applied here and none in the data files:

1. ``scalar Date`` - PDC declares it in its resolvers (``embargo_date: Date``); it is served as recorded.
2. Every other type referenced but not bundled (``Gene``, ``Program``, ``UICase``, ... see
   :func:`missing_types`) is declared as an object type without fields. A query that selects fields of one
   is refused with a GraphQL validation error: the stand-in has neither their SDL nor recordings of them.
3. Fields that the 2019 recordings carry but the bundled (later) SDL no longer declares, so that the
   recorded queries validate: ``Case.gdc_case_id`` (replaced by ``externalReferences`` in PDC-1011) and
   ``UIStudy.num_raw/num_mzml/num_prot/num_prot_assem/num_psm`` (PDC's 2019 ``ModelUIStudy``). Each is added
   only while the SDL lacks it.

The schema is built with ``assume_valid=True`` because of (2): graphql-core's schema validation rejects
object types without fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from graphql import (
    DocumentNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    NamedTypeNode,
    ObjectTypeDefinitionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    build_ast_schema,
    concat_ast,
    parse,
    visit,
)
from graphql.language import Visitor

from oncograph.errors import InputFormatError

CUSTOM_SCALARS: Final = frozenset({"Date"})
"""Scalars PDC defines in code rather than in SDL."""

RECORDED_ERA_FIELDS: Final[tuple[tuple[str, str, str], ...]] = (
    ("Case", "gdc_case_id", "String"),
    ("UIStudy", "num_raw", "Int"),
    ("UIStudy", "num_mzml", "Int"),
    ("UIStudy", "num_prot", "Int"),
    ("UIStudy", "num_prot_assem", "Int"),
    ("UIStudy", "num_psm", "Int"),
)
"""``(type, field, type)`` present in the 2019 recordings and missing from the bundled SDL."""

_BUILTIN_SCALARS: Final = frozenset({"String", "Int", "Float", "Boolean", "ID"})


class _NamedTypes(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_named_type(self, node: NamedTypeNode, *_: object) -> None:
        self.names.add(node.name.value)


def missing_types(document: DocumentNode) -> set[str]:
    """Type names the document references but neither defines nor gets from GraphQL itself."""
    defined = {d.name.value for d in document.definitions if isinstance(d, TypeDefinitionNode)}
    collector = _NamedTypes()
    visit(document, collector)
    return collector.names - defined - _BUILTIN_SCALARS


def _declared_fields(document: DocumentNode) -> dict[str, set[str]]:
    fields: dict[str, set[str]] = {}
    for d in document.definitions:
        if isinstance(d, ObjectTypeDefinitionNode | TypeExtensionNode) and hasattr(d, "fields"):
            names = {f.name.value for f in (getattr(d, "fields", None) or ())}
            fields.setdefault(d.name.value, set()).update(names)
    return fields


def fixup_sdl(document: DocumentNode) -> str:
    """The SDL added to ``document`` so that graphql-core can build it (see the module docstring)."""
    missing = missing_types(document)
    lines = [f"scalar {name}" for name in sorted(missing & CUSTOM_SCALARS)]
    lines += [f"type {name}" for name in sorted(missing - CUSTOM_SCALARS)]
    declared = _declared_fields(document)
    extra: dict[str, list[str]] = {}
    for type_name, field, field_type in RECORDED_ERA_FIELDS:
        if type_name in declared and field not in declared[type_name]:
            extra.setdefault(type_name, []).append(f"{field}: {field_type}")
    lines += [f"extend type {t} {{ {' '.join(fields)} }}" for t, fields in extra.items()]
    return "\n".join(lines)


def build_pdc_schema(sdl_texts: Iterable[str]) -> GraphQLSchema:
    """Parse PDC's SDL files, add the fix-ups and build the schema.

    Raises:
        InputFormatError: the SDL does not parse, or defines no ``Query`` type.
    """
    try:
        document = parse("\n".join(sdl_texts))
        extra = fixup_sdl(document)
        full = concat_ast([document, parse(extra)]) if extra else document
        schema = build_ast_schema(full, assume_valid=True)
    except Exception as exc:  # graphql-core raises GraphQLError (syntax) or TypeError (unknown types)
        raise InputFormatError(f"the PDC GraphQL SDL cannot be built: {exc}") from exc
    if schema.query_type is None:
        raise InputFormatError("the PDC GraphQL SDL defines no Query type")
    return schema


def unwrap(type_: GraphQLOutputType) -> tuple[GraphQLOutputType, bool]:
    """The named type under non-null wrappers, and whether it is a list."""
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        inner: GraphQLOutputType = type_.of_type
        while isinstance(inner, GraphQLNonNull | GraphQLList):
            inner = inner.of_type
        return inner, True
    return type_, False


def list_fields(type_: GraphQLObjectType) -> list[str]:
    """The fields of an object type that return lists (e.g. ``Paginated.casesSamplesAliquots``)."""
    return [name for name, f in type_.fields.items() if unwrap(f.type)[1]]
