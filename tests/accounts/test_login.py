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
