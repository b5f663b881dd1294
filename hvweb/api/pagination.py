from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from hvweb.core.filtersets import parse_whole_number


class Pagination(PageNumberPagination):
    """``?page=N`` with ``?page_size=`` from 1 to 500 (50 by default).

    DRF ignores a malformed ``page_size`` and takes ``page=last`` or
    ``page=1.0``; here each is a 400 naming the parameter, as the schema (an
    integer) promises. A page past the end stays a 404.
    """

    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1:
            raise ValidationError({"page": ["Give page once."]})
        try:
            return parse_whole_number(values[0])
        except DjangoValidationError as exc:
            raise ValidationError({"page": exc.messages}) from None

    def get_page_size(self, request):
        values = request.query_params.getlist(self.page_size_query_param)
        if not values:
            return self.page_size
        if len(values) > 1:
            raise ValidationError({"page_size": ["Give page_size once."]})
        try:
            size = parse_whole_number(values[0], maximum=self.max_page_size)
        except DjangoValidationError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            if parameter["name"] == self.page_query_param:
                parameter["schema"].update(minimum=1)
        return parameters
