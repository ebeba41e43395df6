"""An integrator's own views, guarded by ``IsOTPVerified``, for the permission and credential tests.

Each view differs only in how a request authenticates (session, drf-totp's or DRF's token, HTTP
Basic, SimpleJWT, knox) and in whether a recent second factor is demanded. Errors go through
``drf_totp.exceptions.exception_handler`` so that a denial carries its ``code``.
"""

from __future__ import annotations

from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.authentication import (
    BasicAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from drf_totp import views as totp_views
from drf_totp.authentication import TokenAuthentication as LoginTokenAuthentication
from drf_totp.exceptions import exception_handler
from drf_totp.permissions import IsOTPVerified

# The age limit of the "recent" views, in seconds.
RECENT = 300


class ProtectedView(APIView):
    """GET answers with the username to a credential that ``IsOTPVerified`` lets through."""

    authentication_classes = [SessionAuthentication, LoginTokenAuthentication, TokenAuthentication]
    permission_classes = [IsOTPVerified]

    def get_exception_handler(self):
        return exception_handler

    def get(self, request):
        return Response({"username": request.user.get_username()})


class RecentlyVerifiedView(ProtectedView):
    permission_classes = [IsOTPVerified.with_max_age(RECENT)]


class BasicAuthView(ProtectedView):
    authentication_classes = [BasicAuthentication]


class JWTView(ProtectedView):
    authentication_classes = [JWTAuthentication]


class RecentlyVerifiedJWTView(JWTView):
    permission_classes = [IsOTPVerified.with_max_age(RECENT)]


class KnoxView(ProtectedView):
    authentication_classes = [KnoxTokenAuthentication]


class RecentlyVerifiedKnoxView(KnoxView):
    permission_classes = [IsOTPVerified.with_max_age(RECENT)]


class KnoxValidateView(totp_views.ValidateView):
    """The package's /validate/ as a knox project mounts it (knox as its authentication)."""

    authentication_classes = [KnoxTokenAuthentication]
