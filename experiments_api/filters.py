"""Filter backends shared by the project-scoped viewsets."""

from django_filters.rest_framework import DjangoFilterBackend


class ListFilterBackend(DjangoFilterBackend):
    """Applies the viewset's FilterSet to the list action only: detail routes find an object by its id alone."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", None) != "list":
            return queryset
        return super().filter_queryset(request, queryset, view)
