"""The device check page (设备检测, ``/check``): camera preview, an echo room through the
server, and a plain-words verdict on whether video and sound make the round trip.

The page is a shell for ``static/js/check.js``, which opens an echo room
(``POST /api/v1/rooms {"kind": "echo"}``) and signals over ``/ws`` with
``static/js/rtc-client.js``. Staff use it with their login session; family members and
subjects will reach it with a code that yields a guest principal holding the
``rooms.check`` grant — nothing on the page depends on the login being staff.
"""

from __future__ import annotations

import json
from typing import Final

from aiohttp import web

from web import keys
from web.api_auth import me_payload
from web.i18n import language
from web.policy import policy
from web.templating import render

CHECK_MESSAGES: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "title": "设备检测",
        "intro": "检测摄像头、麦克风和网络：画面和声音会发到服务器再传回本机。",
        "start": "开始检测",
        "retry": "重新检测",
        "local": "本机摄像头",
        "echo": "经服务器传回的画面",
        "step.devices": "摄像头和麦克风",
        "step.server": "连接服务器",
        "step.video": "画面往返",
        "step.audio": "声音往返",
        "step.rtt": "往返时延",
        "state.waiting": "等待",
        "state.running": "检测中…",
        "state.ok": "正常",
        "state.failed": "失败",
        "rtt.value": "{ms} 毫秒",
        "rtt.method": "往返时延取自浏览器 getStats() 中当前连接（ICE 候选对）的 currentRoundTripTime，"
        "即本机到服务器网络往返一次的时间；“首帧用时”是从加入检测到第一帧画面传回的时间。",
        "first_frame": "首帧用时 {ms} 毫秒",
        "verdict.running": "正在检测，请稍候（约 10 秒）…",
        "verdict.ok": "检测通过：画面和声音都能经服务器往返，网络往返时延 {ms} 毫秒。",
        "verdict.slow": "检测通过，但网络较慢（往返 {ms} 毫秒），通话可能有延迟。",
        "fail.devices": "无法打开摄像头或麦克风。请允许浏览器使用摄像头和麦克风，并确认没有其他程序占用。",
        "fail.server": "无法连接服务器。请检查网络后重试。",
        "fail.connect": "媒体连接没有建立。可能是网络（防火墙）阻断了音视频，请联系工作人员。",
        "fail.video": "画面没有从服务器传回。请检查网络后重试。",
        "fail.audio": "声音没有从服务器传回。请检查麦克风和网络后重试。",
        "fail.auth": "登录已失效，请重新登录。",
        "back": "返回",
    },
    "en": {
        "title": "Device check",
        "intro": "Checks camera, microphone and network: your picture and sound go to the "
        "server and come back.",
        "start": "Start check",
        "retry": "Check again",
        "local": "Your camera",
        "echo": "Picture back from the server",
        "step.devices": "Camera and microphone",
        "step.server": "Server connection",
        "step.video": "Video round trip",
        "step.audio": "Sound round trip",
        "step.rtt": "Round-trip time",
        "state.waiting": "waiting",
        "state.running": "checking…",
        "state.ok": "OK",
        "state.failed": "failed",
        "rtt.value": "{ms} ms",
        "rtt.method": "The round-trip time is getStats() currentRoundTripTime of the active ICE "
        "candidate pair: one network round trip between this device and the server. "
        '"First frame" is the time from joining to the first picture coming back.',
        "first_frame": "first frame after {ms} ms",
        "verdict.running": "Checking, please wait (about 10 s)…",
        "verdict.ok": "Passed: picture and sound make the round trip through the server; "
        "network round trip {ms} ms.",
        "verdict.slow": "Passed, but the network is slow ({ms} ms round trip); calls may lag.",
        "fail.devices": "Cannot open the camera or microphone. Allow the browser to use them "
        "and close other programs that use them.",
        "fail.server": "Cannot reach the server. Check the network and try again.",
        "fail.connect": "The media connection did not come up; a firewall may block audio and "
        "video. Contact staff.",
        "fail.video": "The picture did not come back from the server. Check the network.",
        "fail.audio": "The sound did not come back from the server. Check the microphone.",
        "fail.auth": "Your login has expired; sign in again.",
        "back": "Back",
    },
}


@policy("rooms.check", page=True)
async def check_page(request: web.Request) -> web.Response:
    lang = language(request, request.app[keys.SETTINGS].language)
    me = me_payload(request)
    boot = {
        "csrf_token": me.get("csrf_token", ""),
        "home": me.get("home", "/"),
        "strings": CHECK_MESSAGES.get(lang, CHECK_MESSAGES["zh-CN"]),
    }
    return render(
        request,
        "check.html",
        boot_json=json.dumps(boot, ensure_ascii=False).replace("</", "<\\/"),
        s=boot["strings"],
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/check", check_page)
