"""The browsable API's renderer: no form or button for a method a viewset only routes to answer 405."""

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API, minus the forms of the methods named in the view's `refused_methods`.

    PostHog's resources route DELETE only to answer 405 (see `DestroyNotAllowedMixin`); a DELETE button that
    always fails would only mislead.
    """

    def show_form_for_method(self, view, method, request, obj):
        if method in getattr(view, "refused_methods", ()):
            return False
        return super().show_form_for_method(view, method, request, obj)
