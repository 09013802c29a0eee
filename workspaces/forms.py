"""The account form of the invitation page: a visitor with no account makes one."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation


class SignUpForm(forms.Form):
    username = forms.CharField(label="New username", max_length=150)
    email = forms.EmailField(label="Email")
    password = forms.CharField(label="New password", widget=forms.PasswordInput, strip=False)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        model = get_user_model()
        model.username_validator(username)
        if model.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken; sign in if it is yours.")
        return username

    def clean(self) -> dict:
        data = super().clean() or {}
        password = data.get("password")
        if password:
            user = get_user_model()(
                username=data.get("username", ""), email=data.get("email") or ""
            )
            try:
                password_validation.validate_password(password, user)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return data

    def save(self):
        data = self.cleaned_data
        return get_user_model().objects.create_user(
            data["username"], data["email"], data["password"]
        )
