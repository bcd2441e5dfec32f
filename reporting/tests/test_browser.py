"""The dashboard in a real headless Chromium: the charts draw with data."""

import pytest
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(chromium_launch):
    with sync_playwright() as p:
        chromium = p.chromium.launch(**chromium_launch)
        yield chromium
        chromium.close()


@pytest.fixture
def session_cookie(fixture_day, hq_user, client, settings):
    """Log in before the browser starts (playwright's loop makes the ORM refuse to run afterwards)."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    client.force_login(hq_user)
    return client.cookies[settings.SESSION_COOKIE_NAME]


def test_dashboard_draws_its_charts(live_server, session_cookie, browser, settings, screenshot_dir):
    cookie = session_cookie
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_selector("[data-chart='salesByDay'][data-drawn='1'] canvas")

    assert errors == []
    drawn = page.eval_on_selector_all("[data-chart]", "els => els.map(e => [e.dataset.chart, "
                                                      "!!e.querySelector('canvas'), e.dataset.drawn || ''])")
    assert all(has_canvas and flag == "1" for _, has_canvas, flag in drawn), drawn
    # ECharts keeps the option it drew: 28 days ending today, the fixture day's net sales last
    net = page.evaluate("() => echarts.getInstanceByDom(document.querySelector(\"[data-chart='salesByDay']\"))"
                        ".getOption().series[0].data")
    assert len(net) == 28 and net[-1] == 288 and sum(net) == 288
    assert "¥288.00" in page.inner_text("#kpi-net")
    page.screenshot(path=str(screenshot_dir / "dashboard-overview.png"), full_page=False)
    page.screenshot(path=str(screenshot_dir / "dashboard-full.png"), full_page=True)
    context.close()


def test_dashboard_uses_the_full_width_and_chinese_dates(live_server, session_cookie, browser, settings,
                                                         screenshot_dir):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_cookie.value,
                          "url": live_server.url}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_server.url}/dashboard/?start=2026-11-01&end=2026-11-28")
    page.wait_for_selector("[data-chart='salesByDay'][data-drawn='1'] canvas")
    # a text field with the date as year-month-day, not the browser's own mm/dd/yyyy date input
    assert page.input_value("#id_start") == "2026-11-01" and page.input_value("#id_end") == "2026-11-28"
    assert page.get_attribute("#id_start", "type") == "text"
    assert "今天" in page.inner_text(".dash-filter")  # the admin calendar's shortcuts, in Chinese

    width = page.evaluate("() => document.querySelector('.dash').getBoundingClientRect().width")
    assert width >= 1300, f"the dashboard is {width}px wide in a 1400px window"
    columns = page.evaluate("() => getComputedStyle(document.querySelector('.dash-grid'))"
                            ".gridTemplateColumns.split(' ').length")
    assert columns >= 3
    assert errors == []
    page.screenshot(path=str(screenshot_dir / "dashboard-wide.png"), full_page=False)

    page.set_viewport_size({"width": 800, "height": 1000})
    columns = page.evaluate("() => getComputedStyle(document.querySelector('.dash-grid'))"
                            ".gridTemplateColumns.split(' ').length")
    assert columns == 1
    context.close()
