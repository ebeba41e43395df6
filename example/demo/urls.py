"""The example project's own JSON endpoints, next to drf-totp's: sign-up, log-out, who am I."""

from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("signup/", views.SignupView.as_view(), name="signup"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
]
