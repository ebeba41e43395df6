from django.urls import path

from . import views

app_name = "drf_totp"

urlpatterns = [
    path("otp/generate/", views.GenerateView.as_view(), name="generate"),
    path("otp/verify/", views.VerifyView.as_view(), name="verify"),
    path("otp/status/", views.StatusView.as_view(), name="status"),
    path("otp/validate/", views.ValidateView.as_view(), name="validate"),
    path("otp/disable/", views.DisableView.as_view(), name="disable"),
    path("otp/recovery-codes/", views.RecoveryCodesView.as_view(), name="recovery-codes"),
    path("otp/login/", views.LoginView.as_view(), name="login"),
    path("otp/login/verify/", views.LoginVerifyView.as_view(), name="login-verify"),
]
