from ..factories import PASSWORD


def test_log_in_and_out(client, engineer):
    response = client.post("/login/", {"username": "erin", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/changes/"
    assert client.get("/changes/").status_code == 200
    client.post("/logout/")
    assert client.get("/changes/").status_code == 302


def test_wrong_password_is_refused(client, engineer):
    response = client.post("/login/", {"username": "erin", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_repeated_failures_lock_the_account_out(client, engineer, settings):
    settings.AXES_ENABLED = True
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "erin", "password": "wrong"})
    # Even the right password is refused while locked out.
    response = client.post("/login/", {"username": "erin", "password": PASSWORD})
    assert response.status_code == 429
    assert client.get("/changes/").status_code == 302


def test_behind_a_proxy_lockouts_are_per_client_not_per_proxy(client, engineer, settings):
    settings.AXES_ENABLED = True
    settings.AXES_CLIENT_IP_CALLABLE = "apps.accounts.throttle.proxied_client_ip"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/login/",
            {"username": "erin", "password": "wrong"},
            HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9",
        )
    locked = client.post(
        "/login/", {"username": "erin", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert locked.status_code == 429
    # The real user, behind the same proxy but from another address, still gets in.
    response = client.post(
        "/login/", {"username": "erin", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.44"
    )
    assert response.status_code == 302
