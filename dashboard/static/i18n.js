/* Watchpost pages' strings, Chinese (default) and English, shared by the console and the
   family page. `I18N.t(key, vars)` looks a key up in the current language (falling back to
   Chinese, then to the key itself); `I18N.apply(root)` fills every element carrying
   data-i18n (text), data-i18n-placeholder, data-i18n-title or data-i18n-aria-label.

   The strings that name the county (titles) are the deployment's, not the page's: they come
   from GET /api/region and take precedence over these, whenever they arrive. `I18N.region`
   is that document (a promise; null if it could not be read), for the map's opening view. */
(function () {
  "use strict";

  const STRINGS = {
    zh: {
      "app.name": "守望",
      "console.title": "应急指挥 · 值班台",
      "family.title": "守望 · 家人",
      "lang.switch": "English",
      "lang.switch.title": "Switch to English",

      "login.title": "登录",
      "login.console.lead": "应急指挥中心值班人员登录",
      "login.family.lead": "家属登录，查看您家中老人的情况",
      "login.username": "用户名",
      "login.password": "密码",
      "login.submit": "登录",
      "login.busy": "正在登录…",
      "login.failed": "登录失败：{detail}",
      "login.wrong_role.console": "此账号（{role}）没有控制台权限。家属请使用家属页面。",
      "login.wrong_role.family": "此账号（{role}）不是家属账号。值班人员请使用控制台。",
      "login.expired": "登录已过期，请重新登录。",
      "logout": "退出",
      "session.expires": "登录将于 {t} 过期，请交班前重新登录",

      "conn.connecting": "正在连接…",
      "conn.connected": "实时连接正常",
      "conn.reconnecting": "连接中断，{s} 秒后第 {n} 次重连",
      "conn.reconnecting_now": "连接中断，正在重连（第 {n} 次）",
      "conn.offline": "离线：{why}",
      "conn.offline.network": "本机网络已断开",
      "conn.offline.server": "服务器无法连接（已 {s} 秒）",
      "conn.retry": "立即重连",
      "conn.stale": "连接中断期间显示的数据可能不是最新的",
      "conn.last_event": "最后事件 #{id}",

      "sound.on": "声音：开",
      "sound.off": "声音：关",
      "sound.blocked": "点击启用声音",

      "banner.title": "紧急告警",
      "banner.more": "另有 {n} 条",
      "banner.ack": "确认",
      "banner.silence": "静音",

      "alarms.title": "告警",
      "notify.title": "家属通知",
      "notify.empty": "暂无短信或电话通知",
      "notify.channel.app": "应用",
      "notify.channel.sms": "短信",
      "notify.channel.voice": "电话",
      "notify.state.queued": "等待重试",
      "notify.state.sending": "正在发送",
      "notify.state.ringing": "正在振铃",
      "notify.state.answered": "已接听",
      "notify.state.acked": "已确认：正在赶去（按1）",
      "notify.state.no_answer": "无人接听",
      "notify.state.busy": "忙线",
      "notify.state.rejected": "被拒接",
      "notify.state.failed": "发送失败",
      "notify.state.accepted": "短信中心已接收",
      "notify.state.delivered": "已送达",
      "notify.state.cancelled": "已取消",
      "notify.state.expired": "已过期",
      "notify.callback": "请求控制中心回电（按9）",
      "notify.post": "村卫生室 {post}",
      "notify.state.declined": "不能前往（按2）",
      "alarms.empty": "当前没有未处理的告警",
      "alarms.ack": "确认",
      "alarms.counts": "未确认 {a} · 共 {n}",
      "alarms.acked_by": "{who} 已确认",
      "alarms.repeat": "重复 {n} 次",
      "alarms.control_room": "已转指挥中心",
      "alarms.locate": "定位",
      "alarms.family_notified": "已通知家属",

      "incidents.title": "事件",
      "incidents.empty": "当前没有进行中的事件",
      "incidents.new": "接警 · 新建事件",
      "incidents.assign": "派车",
      "incidents.reassign": "改派",
      "incidents.close": "关闭",
      "incidents.close_confirm": "确定关闭？",
      "incidents.locate": "定位",
      "incidents.no_unit": "未派车",
      "incidents.queued": "等待可用车辆",
      "incidents.unit": "车辆 {unit}",
      "incidents.eta": "预计 {m} 分钟到达",
      "responder.waiting": "村医 {post}：等待回复", "responder.accepted": "村医 {post}：已出发",
      "responder.on_scene": "村医 {post}：已到现场", "responder.declined": "村医 {post}：无法前往",
      "responder.no_answer": "村医 {post}：未回复", "incidents.diverted": "已改送 {to}",
      "incidents.dispatcher_only": "需要调度员权限",
      "incidents.untrusted_fix": "定位在服务区外，未采用",
      "verify.pending": "核实电话：{t} 前未记录则加派救护车", "verify.ok": "核实：无人受伤",
      "verify.hurt": "核实：有人受伤，已加派救护车", "verify.no_answer": "核实：无人接听，已加派救护车",
      "verify.button.ok": "已接通，无人受伤", "verify.button.hurt": "有人受伤", "verify.button.no_answer": "无人接听",
      "incidents.loop": "闭环：{stage}",

      "assign.title": "派车 · {id}",
      "assign.rule": "规则：{rule}",
      "assign.current": "当前车辆：{unit}",
      "assign.loading": "正在计算各车辆的道路行驶时间…",
      "assign.col.rank": "序",
      "assign.col.unit": "车辆",
      "assign.col.status": "状态",
      "assign.col.eta": "预计到达",
      "assign.col.gps": "定位",
      "assign.eta_min": "{m} 分钟",
      "assign.fresh": "实时（{s} 秒前）",
      "assign.stale": "过期（{s} 秒前）",
      "assign.never": "未上报 · 按驻地计",
      "assign.pick": "派此车",
      "assign.recommended": "推荐",
      "assign.none": "没有可派的车辆",
      "assign.excluded": "不可派车辆（{n}）",
      "assign.done": "已派 {unit}，预计 {m} 分钟到达",
      "assign.cancel": "取消",
      "assign.failed": "派车失败：{detail}",

      "call.title": "接警 · 新建事件",
      "call.pick_hint": "在地图上点击事发地点",
      "call.lat": "纬度",
      "call.lon": "经度",
      "call.kind": "类型",
      "call.priority": "优先级",
      "call.description": "情况说明",
      "call.submit": "创建事件",
      "call.cancel": "取消",
      "call.need_location": "请先在地图上点击选择事发地点",
      "call.created": "已创建事件 {id}",
      "call.failed": "创建失败：{detail}",

      "map.missing": "地图组件未安装（运行 scripts/frontend.sh）。告警和事件队列仍可使用。",
      "map.loading": "正在加载地图…",
      "coverage.accept": "接受调派",
      "coverage.move_up": "{town}覆盖不足（15 分钟内 {share}%）：建议 {unit} 前往 {facility}（车程 {min} 分钟）",
      "coverage.sent": "{unit} 已调往 {facility}",
      "coverage.band0": "8 分钟内", "coverage.band1": "12 分钟内", "coverage.band2": "15 分钟内", "coverage.band3": "超过 15 分钟",
      "map.failed": "地图数据加载失败：{detail}",
      "legend.title": "水质类别（GB 3838）",
      "legend.nodata": "无数据",
      "legend.alarm": "告警中",

      "station.class": "水质 {cls} 类（目标 {target} 类）",
      "station.class_nodata": "暂无有效数据（目标 {target} 类）",
      "station.last": "最新数据 {t}",
      "station.worst": "主要超标项 {p} = {v}",

      "unit.at_base": "未上报定位 · 位于驻地",
      "unit.gps_at": "定位 {t}",

      "sev.critical": "危急",
      "sev.major": "严重",
      "sev.minor": "一般",
      "sev.warning": "提示",
      "sev.emergency": "紧急",

      "state.active": "未确认",
      "state.acked": "已确认",
      "state.cleared": "已解除",

      "prio.1": "一级（最紧急）",
      "prio.2": "二级",
      "prio.3": "三级",
      "prio.4": "四级",

      "kind.medical": "医疗急救",
      "kind.fire": "火警/燃气",
      "kind.water": "水质巡查",

      "istate.new": "待派车",
      "istate.dispatched": "已派车",
      "istate.on_scene": "到达现场",
      "istate.transporting": "转运中",
      "istate.closed": "已结案",
      "istate.cancelled": "已取消",

      "loop.assigned": "巡查已派",
      "loop.in_progress": "现场处置",
      "loop.verified": "已复核，待销号",
      "loop.closed": "已销号",

      "ustate.available": "空闲",
      "ustate.dispatched": "已派出",
      "ustate.en_route": "出车途中",
      "ustate.on_scene": "现场",
      "ustate.transporting": "转运",
      "ustate.at_hospital": "在医院",
      "ustate.returning": "返回中",
      "ustate.out_of_service": "停用",

      "ukind.ambulance": "救护车",
      "ukind.river_patrol": "河道巡查",

      "atype.water_class_exceeded": "水质超标",
      "atype.water_anomaly": "水质异常波动",
      "atype.water_hourly_exceeded": "小时数据超标",
      "detail.covers": "评价指标：{ps}（持续 {h} 小时）",
      "detail.partner_accepted": "对方已确认：{who}",
      "detail.partner_refused": "对方拒收：{who}",
      "detail.partner_escalated": "对方未确认，已升级至 {who}",
      "atype.sos": "一键呼救 SOS",
      "atype.fall": "跌倒",
      "atype.fall_uncancelled": "跌倒未取消",
      "atype.heart_rate_low": "心率过低",
      "atype.heart_rate_high": "心率过高",
      "atype.spo2_low": "血氧过低",
      "atype.inactivity": "长时间无活动",
      "atype.bed_exit_night": "夜间离床未归",
      "atype.not_in_bed": "到点未上床",
      "atype.not_up": "到点未起床",
      "atype.door_open_night": "夜间门开",
      "atype.smoke": "烟雾报警",
      "atype.gas": "燃气泄漏",
      "atype.water_leak": "漏水",
      "atype.battery_low": "电量低",
      "atype.device_silent": "设备离线",

      "src.station": "水质站",
      "src.device": "设备",
      "src.wearable": "手环",

      "fac.emergency_centre": "急救中心",
      "fac.ambulance_station": "急救站",
      "fac.first_aid_post": "村卫生室急救点",
      "fac.hospital": "医院",
      "fac.patrol_base": "巡查基地",

      "time.just_now": "刚刚",
      "time.s_ago": "{n} 秒前",
      "time.m_ago": "{n} 分钟前",
      "time.h_ago": "{n} 小时前",
      "time.d_ago": "{n} 天前",

      "error.generic": "出错了：{detail}",
      "error.forbidden": "没有权限：{detail}",

      "family.relatives": "我的家人",
      "family.none": "您的账号还没有关联任何老人。请联系社区或指挥中心。",
      "family.last_seen": "最后在线",
      "family.never": "尚无数据",
      "family.vitals": "健康数据",
      "family.hr": "心率",
      "family.spo2": "血氧",
      "family.skin": "体表温度",
      "family.steps": "步数",
      "family.battery": "手环电量",
      "family.home": "家中传感器",
      "family.no_sensors": "没有家中传感器",
      "family.alerts": "告警",
      "family.no_alerts": "目前一切正常",
      "family.on_my_way": "我马上过去",
      "family.on_way_sent": "已告知指挥中心：{who} 正在赶去",
      "family.acked_by": "{who} 已确认",
      "family.new_alert": "新告警：{what}",
      "family.address": "住址",
      "family.updated": "更新于 {t}",
      "family.help": "遇到危急情况请直接拨打 120",
      "family.doctor_coming": "村医正在赶来",
      "family.doctor_on_scene": "村医已到达",
      "family.ambulance_eta": "救护车约 {m} 分钟后到达",
      "family.ambulance_coming": "救护车已出发",

      "sensor.motion": "人体感应",
      "sensor.door": "门磁",
      "sensor.smoke": "烟雾",
      "sensor.gas": "燃气",
      "sensor.water_leak": "漏水",
      "sensor.bed": "床垫",
      "sensor.temperature": "室温",
      "sensor.on": "触发",
      "sensor.off": "正常",
      "sensor.none": "无记录",
      "param.ph": "pH",
      "param.do_mg_l": "溶解氧",
      "param.codmn_mg_l": "高锰酸盐指数",
      "param.cod_mg_l": "化学需氧量",
      "param.nh3n_mg_l": "氨氮",
      "param.tp_mg_l": "总磷",
      "param.tn_mg_l": "总氮",
      "param.chla_ug_l": "叶绿素a",
      "param.sd_m": "透明度",
      "param.hr_bpm": "心率",
      "param.spo2_pct": "血氧",
      "detail.water": "{cls} 类（目标 {target} 类）· {p} {v}",
      "detail.vital": "{p} {v}",
      "detail.battery": "电量 {v}%",
      "detail.sensor": "传感器 {s}",
      "detail.manual": "接警创建 · {who}",
      "detail.from_alarm": "由告警 #{id} 触发",
    },

    en: {
      "app.name": "Watchpost",
      "console.title": "Emergency Control Room",
      "family.title": "Watchpost · Family",
      "lang.switch": "中文",
      "lang.switch.title": "切换到中文",

      "login.title": "Sign in",
      "login.console.lead": "Control-room staff sign-in",
      "login.family.lead": "Family sign-in: see how your relative is doing",
      "login.username": "Username",
      "login.password": "Password",
      "login.submit": "Sign in",
      "login.busy": "Signing in…",
      "login.failed": "Sign-in failed: {detail}",
      "login.wrong_role.console": "This account ({role}) may not use the console. Family members: use the family page.",
      "login.wrong_role.family": "This account ({role}) is not a family account. Control-room staff: use the console.",
      "login.expired": "Your session has expired; please sign in again.",
      "logout": "Sign out",
      "session.expires": "Session ends at {t}: sign in again",

      "conn.connecting": "Connecting…",
      "conn.connected": "Live",
      "conn.reconnecting": "Connection lost: retry {n} in {s} s",
      "conn.reconnecting_now": "Connection lost: reconnecting (attempt {n})",
      "conn.offline": "Offline: {why}",
      "conn.offline.network": "this computer has no network",
      "conn.offline.server": "server unreachable for {s} s",
      "conn.retry": "Retry now",
      "conn.stale": "Disconnected: what you see may be out of date",
      "conn.last_event": "last event #{id}",

      "sound.on": "Sound: on",
      "sound.off": "Sound: off",
      "sound.blocked": "Click to enable sound",

      "banner.title": "EMERGENCY ALARM",
      "banner.more": "{n} more",
      "banner.ack": "Acknowledge",
      "banner.silence": "Silence",

      "alarms.title": "Alarms",
      "notify.title": "Family notifications",
      "notify.empty": "No SMS or calls yet",
      "notify.channel.app": "app",
      "notify.channel.sms": "SMS",
      "notify.channel.voice": "call",
      "notify.state.queued": "waiting to retry",
      "notify.state.sending": "sending",
      "notify.state.ringing": "ringing",
      "notify.state.answered": "answered",
      "notify.state.acked": "on the way (pressed 1)",
      "notify.state.no_answer": "no answer",
      "notify.state.busy": "busy",
      "notify.state.rejected": "rejected",
      "notify.state.failed": "failed",
      "notify.state.accepted": "accepted by the SMSC",
      "notify.state.delivered": "delivered",
      "notify.state.cancelled": "cancelled",
      "notify.state.expired": "expired",
      "notify.callback": "asks the control room to call back (pressed 9)",
      "notify.post": "first-aid post {post}",
      "notify.state.declined": "cannot go (pressed 2)",
      "alarms.empty": "No open alarms",
      "alarms.ack": "Acknowledge",
      "alarms.counts": "{a} unacknowledged · {n} open",
      "alarms.acked_by": "acknowledged by {who}",
      "alarms.repeat": "repeated {n}×",
      "alarms.control_room": "escalated to control room",
      "alarms.locate": "Locate",
      "alarms.family_notified": "family notified",

      "incidents.title": "Incidents",
      "incidents.empty": "No open incidents",
      "incidents.new": "New incident (call)",
      "incidents.assign": "Assign",
      "incidents.reassign": "Re-assign",
      "incidents.close": "Close",
      "incidents.close_confirm": "Really close?",
      "incidents.locate": "Locate",
      "incidents.no_unit": "no unit",
      "incidents.queued": "waiting for a free unit",
      "incidents.unit": "unit {unit}",
      "incidents.eta": "ETA {m} min",
      "responder.waiting": "Doctor {post}: waiting", "responder.accepted": "Doctor {post}: on the way",
      "responder.on_scene": "Doctor {post}: on scene", "responder.declined": "Doctor {post}: declined",
      "responder.no_answer": "Doctor {post}: no answer", "incidents.diverted": "Diverted to {to}",
      "incidents.dispatcher_only": "needs the dispatcher role",
      "incidents.untrusted_fix": "fix outside the region, not used",
      "verify.pending": "verification call: an ambulance is added at {t} unless answered", "verify.ok": "verified: nobody hurt",
      "verify.hurt": "verified: someone hurt, ambulance added", "verify.no_answer": "no answer: ambulance added",
      "verify.button.ok": "Answered, nobody hurt", "verify.button.hurt": "Someone hurt", "verify.button.no_answer": "No answer",
      "incidents.loop": "loop: {stage}",

      "assign.title": "Assign a unit · {id}",
      "assign.rule": "Rule: {rule}",
      "assign.current": "Current unit: {unit}",
      "assign.loading": "Computing road travel times…",
      "assign.col.rank": "#",
      "assign.col.unit": "Unit",
      "assign.col.status": "Status",
      "assign.col.eta": "ETA",
      "assign.col.gps": "Position",
      "assign.eta_min": "{m} min",
      "assign.fresh": "live ({s} s ago)",
      "assign.stale": "stale ({s} s ago)",
      "assign.never": "never reported · at base",
      "assign.pick": "Assign",
      "assign.recommended": "recommended",
      "assign.none": "No unit can be assigned",
      "assign.excluded": "Not eligible ({n})",
      "assign.done": "{unit} assigned, ETA {m} min",
      "assign.cancel": "Cancel",
      "assign.failed": "Assignment failed: {detail}",

      "call.title": "New incident (call-taker)",
      "call.pick_hint": "Click the map where it happened",
      "call.lat": "Latitude",
      "call.lon": "Longitude",
      "call.kind": "Kind",
      "call.priority": "Priority",
      "call.description": "Description",
      "call.submit": "Create incident",
      "call.cancel": "Cancel",
      "call.need_location": "Click the map to set the location first",
      "call.created": "Incident {id} created",
      "call.failed": "Could not create: {detail}",

      "map.missing": "The map library is not installed (run scripts/frontend.sh). The queues still work.",
      "map.loading": "Loading the map…",
      "coverage.accept": "Accept move-up",
      "coverage.move_up": "{town} is short of cover ({share}% of villages within 15 min): move {unit} to {facility} ({min} min drive)",
      "coverage.sent": "{unit} sent to stand by at {facility}",
      "coverage.band0": "within 8 min", "coverage.band1": "within 12 min", "coverage.band2": "within 15 min", "coverage.band3": "beyond 15 min",
      "map.failed": "Could not load the map: {detail}",
      "legend.title": "Water class (GB 3838)",
      "legend.nodata": "no data",
      "legend.alarm": "in alarm",

      "station.class": "Class {cls} (target {target})",
      "station.class_nodata": "No valid reading yet (target {target})",
      "station.last": "latest reading {t}",
      "station.worst": "worst parameter {p} = {v}",

      "unit.at_base": "no GPS yet · at base",
      "unit.gps_at": "GPS {t}",

      "sev.critical": "Critical",
      "sev.major": "Major",
      "sev.minor": "Minor",
      "sev.warning": "Warning",
      "sev.emergency": "Emergency",

      "state.active": "unacknowledged",
      "state.acked": "acknowledged",
      "state.cleared": "cleared",

      "prio.1": "P1 (most urgent)",
      "prio.2": "P2",
      "prio.3": "P3",
      "prio.4": "P4",

      "kind.medical": "Medical",
      "kind.fire": "Fire / gas",
      "kind.water": "Water patrol",

      "istate.new": "waiting",
      "istate.dispatched": "dispatched",
      "istate.on_scene": "on scene",
      "istate.transporting": "transporting",
      "istate.closed": "closed",
      "istate.cancelled": "cancelled",

      "loop.assigned": "patrol assigned",
      "loop.in_progress": "patrol on scene",
      "loop.verified": "verified, to close out",
      "loop.closed": "closed out",

      "ustate.available": "available",
      "ustate.dispatched": "dispatched",
      "ustate.en_route": "en route",
      "ustate.on_scene": "on scene",
      "ustate.transporting": "transporting",
      "ustate.at_hospital": "at hospital",
      "ustate.returning": "returning",
      "ustate.out_of_service": "out of service",

      "ukind.ambulance": "Ambulance",
      "ukind.river_patrol": "River patrol",

      "atype.water_class_exceeded": "Water class exceeded",
      "atype.water_anomaly": "Water anomaly",
      "atype.water_hourly_exceeded": "Hourly data over target",
      "detail.covers": "graded from {ps} (for {h} h)",
      "detail.partner_accepted": "partner accepted: {who}",
      "detail.partner_refused": "partner refused: {who}",
      "detail.partner_escalated": "no partner Ack: escalated to {who}",
      "atype.sos": "SOS",
      "atype.fall": "Fall",
      "atype.fall_uncancelled": "Fall, not cancelled",
      "atype.heart_rate_low": "Heart rate low",
      "atype.heart_rate_high": "Heart rate high",
      "atype.spo2_low": "SpO₂ low",
      "atype.inactivity": "Inactivity",
      "atype.bed_exit_night": "Out of bed at night",
      "atype.not_in_bed": "Not in bed by bedtime",
      "atype.not_up": "Not up by morning",
      "atype.door_open_night": "Door open at night",
      "atype.smoke": "Smoke",
      "atype.gas": "Gas leak",
      "atype.water_leak": "Water leak",
      "atype.battery_low": "Battery low",
      "atype.device_silent": "Device silent",

      "src.station": "station",
      "src.device": "device",
      "src.wearable": "wearable",

      "fac.emergency_centre": "Emergency centre",
      "fac.ambulance_station": "Ambulance station",
      "fac.first_aid_post": "First-aid post",
      "fac.hospital": "Hospital",
      "fac.patrol_base": "Patrol base",

      "time.just_now": "just now",
      "time.s_ago": "{n} s ago",
      "time.m_ago": "{n} min ago",
      "time.h_ago": "{n} h ago",
      "time.d_ago": "{n} d ago",

      "error.generic": "Error: {detail}",
      "error.forbidden": "Not allowed: {detail}",

      "family.relatives": "My family",
      "family.none": "No relative is linked to your account yet. Please contact the community office or the control room.",
      "family.last_seen": "Last seen",
      "family.never": "no data yet",
      "family.vitals": "Health",
      "family.hr": "Heart rate",
      "family.spo2": "SpO₂",
      "family.skin": "Skin temp.",
      "family.steps": "Steps",
      "family.battery": "Band battery",
      "family.home": "Home sensors",
      "family.no_sensors": "No home sensors",
      "family.alerts": "Alerts",
      "family.no_alerts": "All is well right now",
      "family.on_my_way": "I'm on my way",
      "family.on_way_sent": "The control room knows {who} is on the way",
      "family.acked_by": "acknowledged by {who}",
      "family.new_alert": "New alert: {what}",
      "family.address": "Address",
      "family.updated": "updated {t}",
      "family.help": "In a life-threatening emergency call 120",
      "family.doctor_coming": "The village doctor is on the way",
      "family.doctor_on_scene": "The village doctor is there",
      "family.ambulance_eta": "Ambulance in about {m} min",
      "family.ambulance_coming": "An ambulance is on the way",

      "sensor.motion": "Motion",
      "sensor.door": "Door",
      "sensor.smoke": "Smoke",
      "sensor.gas": "Gas",
      "sensor.water_leak": "Water leak",
      "sensor.bed": "Bed",
      "sensor.temperature": "Room temp.",
      "sensor.on": "triggered",
      "sensor.off": "normal",
      "sensor.none": "no events",
      "param.ph": "pH",
      "param.do_mg_l": "DO",
      "param.codmn_mg_l": "CODMn",
      "param.cod_mg_l": "COD",
      "param.nh3n_mg_l": "NH3-N",
      "param.tp_mg_l": "TP",
      "param.tn_mg_l": "TN",
      "param.chla_ug_l": "chlorophyll-a",
      "param.sd_m": "transparency (SD)",
      "param.hr_bpm": "HR",
      "param.spo2_pct": "SpO₂",
      "detail.water": "class {cls} (target {target}) · {p} {v}",
      "detail.vital": "{p} {v}",
      "detail.battery": "battery {v}%",
      "detail.sensor": "sensor {s}",
      "detail.manual": "call-taker · {who}",
      "detail.from_alarm": "from alarm #{id}",
    },
  };

  const KEY = "watchpost.lang";
  let lang = "zh";
  try {
    const saved = localStorage.getItem(KEY);
    if (saved === "zh" || saved === "en") lang = saved;
  } catch (_e) { /* storage disabled: Chinese */ }
  const listeners = [];
  // The region's strings, by language, over the pages' own (filled from /api/region).
  const REGION = { zh: {}, en: {} };

  function t(key, vars) {
    let s = REGION[lang][key];
    if (s === undefined) s = STRINGS[lang][key];
    if (s === undefined) s = REGION.zh[key];
    if (s === undefined) s = STRINGS.zh[key];
    if (s === undefined) return key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined || vars[k] === null ? m : String(vars[k])));
    return s;
  }

  function has(key) {
    return REGION[lang][key] !== undefined || STRINGS[lang][key] !== undefined || STRINGS.zh[key] !== undefined;
  }

  function apply(root) {
    root = root || document;
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    root.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
    root.querySelectorAll("[data-i18n-aria-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel)); });
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  }

  function setLang(next) {
    if (next !== "zh" && next !== "en") return;
    lang = next;
    try { localStorage.setItem(KEY, lang); } catch (_e) { /* ignore */ }
    apply(document);
    listeners.forEach((fn) => fn(lang));
  }

  /** "3 min ago" from an ISO time (or ms), against the local clock. */
  function ago(iso) {
    const ms = typeof iso === "number" ? iso : Date.parse(iso);
    if (!isFinite(ms)) return "";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 5) return t("time.just_now");
    if (s < 60) return t("time.s_ago", { n: s });
    if (s < 3600) return t("time.m_ago", { n: Math.floor(s / 60) });
    if (s < 86400) return t("time.h_ago", { n: Math.floor(s / 3600) });
    return t("time.d_ago", { n: Math.floor(s / 86400) });
  }

  /** Local wall-clock time of an ISO instant (HH:MM:SS; with the date when not today). */
  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const pad = (n) => String(n).padStart(2, "0");
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return hms;
    return `${d.getMonth() + 1}-${pad(d.getDate())} ${hms}`;
  }

  /** A page's own strings, merged in ({zh: {...}, en: {...}}). */
  function extend(more) {
    Object.keys(more).forEach((l) => { if (STRINGS[l]) Object.assign(STRINGS[l], more[l]); });
  }

  // Asked at once, so the titles are the county's before anyone logs in; the pages' own
  // listeners (titles, labels) run again when they arrive, as after a language switch.
  const region = fetch("/api/region", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null)
    .then((doc) => {
      if (doc && doc.strings) {
        ["zh", "en"].forEach((l) => Object.assign(REGION[l], doc.strings[l] || {}));
        if (document.readyState !== "loading") apply(document);
        else document.addEventListener("DOMContentLoaded", () => apply(document));
        listeners.forEach((fn) => fn(lang));
      }
      return doc;
    });

  window.I18N = {
    t, has, apply, setLang, ago, clock, extend, region,
    get lang() { return lang; },
    onChange(fn) { listeners.push(fn); },
  };
})();
