"""UI strings: zh-CN by default, English available (``?lang=en`` or the ``lang`` cookie)."""

from __future__ import annotations

from aiohttp import web

LANGS = ("zh-CN", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "login.title": "登录",
        "login.username": "用户名",
        "login.password": "密码",
        "login.submit": "登录",
        "login.invalid": "用户名或密码错误",
        "login.locked": "登录失败次数过多，请 {s} 秒后再试",
        "login.error": "登录失败，请稍后再试",
        "home.title": "首页",
        "home.welcome": "您好，{name}",
        "home.role": "角色",
        "home.jurisdiction": "辖区",
        "home.logout": "退出登录",
        "home.pending": "您的工作页面正在建设中。",
        "home.goto": "进入工作页面",
        "role.admin": "系统管理员",
        "role.duty": "值班员",
        "role.district": "区司法局",
        "role.street": "司法所",
        "role.visit_staff": "会见工作人员",
        "role.wall": "大屏",
        "role.family": "亲属",
        "role.subject": "社区矫正对象",
        "role.integration": "接口",
        "lang.switch": "English",
    },
    "en": {
        "login.title": "Sign in",
        "login.username": "Username",
        "login.password": "Password",
        "login.submit": "Sign in",
        "login.invalid": "Wrong username or password",
        "login.locked": "Too many failed attempts; try again in {s} s",
        "login.error": "Sign-in failed; try again later",
        "home.title": "Home",
        "home.welcome": "Hello, {name}",
        "home.role": "Role",
        "home.jurisdiction": "Jurisdiction",
        "home.logout": "Sign out",
        "home.pending": "Your work page is being built.",
        "home.goto": "Open your work page",
        "role.admin": "Administrator",
        "role.duty": "Duty officer",
        "role.district": "District bureau",
        "role.street": "Judicial office",
        "role.visit_staff": "Visit staff",
        "role.wall": "Wall screen",
        "role.family": "Family member",
        "role.subject": "Supervised person",
        "role.integration": "Integration",
        "lang.switch": "中文",
    },
}


def language(request: web.Request, default: str = "zh-CN") -> str:
    lang = request.query.get("lang") or request.cookies.get("lang") or default
    return lang if lang in LANGS else default


def translator(lang: str):  # type: ignore[no-untyped-def]
    table = MESSAGES.get(lang, MESSAGES["zh-CN"])
    fallback = MESSAGES["zh-CN"]

    def t(key: str, **kwargs: object) -> str:
        text = table.get(key) or fallback.get(key) or key
        return text.format(**kwargs) if kwargs else text

    return t
