"""SCIM filters (RFC 7644 §3.4.2.2) as SQL over the employees table.

scim2-models parses the filter and binds each attribute to its schema URN; this turns the tree into
a WHERE clause. Comparisons on strings ignore case unless the attribute is case-exact, as the RFC
asks; a multi-valued sub-selection (``emails[type eq "work"]``) is refused with ``invalidFilter``.
"""

from typing import Any

from scim2_models import InvalidFilterException, ScimFilter
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
    coerce_value,
)
from sqlalchemy import ColumnElement, String, and_, func, not_, or_

from crossgen_matching.directory.models import Employee

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

COLUMNS: dict[str, Any] = {
    f"{CORE}:id": Employee.employee_number,
    f"{CORE}:externalId": Employee.external_id,
    # As resources.to_user shows it: an employee an HRIS fed without one goes by their email.
    f"{CORE}:userName": func.coalesce(Employee.user_name, Employee.email, Employee.employee_number),
    f"{CORE}:displayName": Employee.display_name,
    f"{CORE}:emails.value": Employee.email,
    f"{CORE}:active": Employee.active,
    f"{CORE}:title": Employee.title,
    f"{CORE}:timezone": Employee.timezone,
    f"{CORE}:meta.created": Employee.created_at,
    f"{CORE}:meta.lastModified": Employee.updated_at,
    f"{ENTERPRISE}:employeeNumber": Employee.employee_number,
    f"{ENTERPRISE}:department": Employee.department,
    f"{ENTERPRISE}:division": Employee.division,
    f"{ENTERPRISE}:organization": Employee.organization,
    f"{ENTERPRISE}:costCenter": Employee.cost_center,
    f"{ENTERPRISE}:manager.value": Employee.manager_employee_number,
}


def where(scim_filter: ScimFilter[Any]) -> ColumnElement[bool]:
    """The SQL condition of a filter bound to the User model.

    Raises InvalidFilterException for an attribute the directory cannot filter on.
    """
    return _ToSql(scim_filter).visit(scim_filter.ast)


class _ToSql(FilterVisitor[ColumnElement[bool]]):
    def __init__(self, scim_filter: ScimFilter[Any]) -> None:
        self.filter = scim_filter

    def _column(self, urn: str, attribute: object) -> Any:
        column = COLUMNS.get(urn)
        if column is None:
            supported = ", ".join(sorted(u.rsplit(":", 1)[1] for u in COLUMNS))
            raise InvalidFilterException(
                detail=f"filtering on {attribute} is not supported; filter on: {supported}"
            )
        return column

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        binding = self.filter.resolve_comparison(node.attr_path)
        assert binding is not None  # the filter is bound to a model
        column = self._column(binding.urn, node.attr_path)
        value = coerce_value(binding, node.value, node.op)
        if value is None:
            return column.is_(None) if node.op == CompareOperator.eq else column.is_not(None)
        if isinstance(column.type, String) and not binding.case_exact:
            column, value = func.lower(column), str(value).lower()
        return _compare(column, node.op, value)

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        binding = self.filter.resolve(node.attr_path)
        assert binding is not None
        column = self._column(binding.urn, node.attr_path)
        present = column.is_not(None)
        return and_(present, column != "") if isinstance(column.type, String) else present

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        join = and_ if node.op == LogicalOperator.and_ else or_
        return join(*(self.visit(term) for term in node.terms))

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        raise InvalidFilterException(
            detail=f"value selections such as {node} are not supported; use {node.attr_path}.value"
        )


def _compare(column: Any, op: CompareOperator, value: Any) -> ColumnElement[bool]:
    match op:
        case CompareOperator.eq:
            return column == value
        case CompareOperator.ne:
            return or_(column != value, column.is_(None))
        case CompareOperator.co:
            return column.contains(value, autoescape=True)
        case CompareOperator.sw:
            return column.startswith(value, autoescape=True)
        case CompareOperator.ew:
            return column.endswith(value, autoescape=True)
        case CompareOperator.gt:
            return column > value
        case CompareOperator.ge:
            return column >= value
        case CompareOperator.lt:
            return column < value
        case CompareOperator.le:
            return column <= value
