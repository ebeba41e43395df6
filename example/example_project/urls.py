from django.contrib import admin
from django.urls import include, path

from demo.views import index

urlpatterns = [
    path("", index, name="index"),
    path("auth/", include("drf_totp.urls")),
    path("demo/", include("demo.urls")),
    path("admin/", admin.site.urls),
]
