from django.contrib import admin
from django.urls import include, path
from rest_framework_simplejwt.views import TokenRefreshView

from drf_totp.admin import TOTPDeviceAdmin
from drf_totp.models import TOTPDevice
from tests import views

# A project's admin site without drf-totp's login (admin.site is OTPAdminSite in tests/settings.py).
plain_site = admin.AdminSite(name="plain_admin")
plain_site.register(TOTPDevice, TOTPDeviceAdmin)

urlpatterns = [
    path("auth/", include("drf_totp.urls")),
    path("admin/", admin.site.urls),
    path("plain-admin/", plain_site.urls),
    # An integrator's own views guarded by IsOTPVerified (tests/views.py), one per credential.
    path("protected/", views.ProtectedView.as_view()),
    path("protected/recent/", views.RecentlyVerifiedView.as_view()),
    path("protected/basic/", views.BasicAuthView.as_view()),
    path("protected/jwt/", views.JWTView.as_view()),
    path("protected/jwt/recent/", views.RecentlyVerifiedJWTView.as_view()),
    path("protected/jwt/refresh/", TokenRefreshView.as_view()),
    path("protected/knox/", views.KnoxView.as_view()),
    path("protected/knox/recent/", views.RecentlyVerifiedKnoxView.as_view()),
    path("protected/knox/validate/", views.KnoxValidateView.as_view()),
]
