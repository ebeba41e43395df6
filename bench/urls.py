"""The example project's URLs, and the floor endpoints the bench compares against."""

from django.urls import path

from bench import floor
from example_project.urls import urlpatterns as example_urlpatterns

urlpatterns = [
    *example_urlpatterns,
    path("bench/floor/validate/", floor.ValidateFloorView.as_view()),
    path("bench/floor/validate-sql/", floor.ValidateFloorSQLView.as_view()),
    path("bench/floor/row/", floor.OneRowView.as_view()),
    path("bench/floor/row-sql/", floor.OneRowSQLView.as_view()),
]
