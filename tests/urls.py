from dj_rest_auth.views import LoginView as DjRestAuthLoginView
from django.contrib import admin
from django.urls import include, path
from knox import views as knox_views
from rest_framework.authtoken.views import obtain_auth_token
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
    path("auth/knox/logout/", knox_views.LogoutView.as_view()),
    path("auth/knox/logoutall/", knox_views.LogoutAllView.as_view()),
    # Logins that check a password only, as projects route them next to drf-totp's
    # (tests/test_password_only_logins.py).
    path("password-only/authtoken/", obtain_auth_token),
    path("password-only/dj-rest-auth/", DjRestAuthLoginView.as_view()),
]
