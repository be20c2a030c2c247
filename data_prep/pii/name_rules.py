"""The word lists and context patterns of the person-name rules (:mod:`data_prep.pii.names`).

Surnames (one and two syllables), given-name syllables, titles and honorifics, role labels before a
name, organisation + title after it, and the endings that make a candidate a place, an institution or a
loanword. Developed on ko_pii and KLUE-NER dev sentences 1–2,500 (data_prep/README.md, "PII"); the
held-out report set never tuned them.
"""
from __future__ import annotations

import re

SURNAMES_2 = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "어금", "망절")
SURNAMES_1 = set("김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예봉경사부가복태목형계피두감음빈온호범좌팽승간상갈단견당화창")
GIVEN = set("민서지현준우연영수진호훈은윤예린원도하혜재희경숙미정성동기태석철규상주아유나소빈율채다인용광명선혁찬환한승보건형순자옥애향란화식남일종근덕봉길춘열중웅완범겸후헌의효신래섭창택국익문욱세양모")
TITLES = ("씨", "님", "군", "양", "과장", "부장", "차장", "대리", "사원", "주임", "팀장", "실장", "국장", "본부장", "이사",
          "대표", "사장", "부사장", "회장", "위원장", "위원", "의원", "장관", "차관", "청장", "처장", "시장", "구청장",
          "사무관", "주무관", "서기관", "교수", "박사", "선생", "교사", "기자", "변호사", "검사", "판사", "재판장", "의사",
          "간호사", "원장", "소장", "관장", "감사", "감사실장", "경위", "경사", "경감", "경정", "순경", "대령", "중령",
          "소령", "대위", "중위", "소위", "병장", "상병", "일병", "이병", "하사", "중사", "상사", "전문의", "작가", "감독",
          "학생", "학부모", "목사", "신부", "스님", "할머니", "할아버지", "어머니", "아버지", "환자", "고객", "대표이사",
          "담임", "조교", "연구원", "전임", "책임", "수석", "선임", "공중보건의", "청소년지도사", "사회복지사", "간사",
          "총장", "학장", "이사장", "부회장", "상무", "전무", "지점장", "점장", "매니저", "코치", "선수", "임산부", "여사",
          "소방정", "소방령", "소방경", "소방위", "소방장", "소방교", "소방사", "총경", "경무관", "경장")
_TITLE_SET = frozenset(TITLES)
LABELS = re.compile(r"(성명|이름|성함|담당자?|작성자?|작성|환자|피의자|피고인?|원고|신청인|청구인|수신|참조|발신|보호자|대표자|"
                    r"대표이사|대표|응시자|지원자|임차인|임대인|매수인|매도인|배우자|수검자|입주자|민원인|고객명?|예금주|소유주|"
                    r"소유자|수취인|보유자|상속인|피상속인|사망자|면담자|평가자|감사관|위원장|근로자|사업주|선주|장남|장녀|차남|"
                    r"차녀|변호인|소송대리인|의뢰 의사|담당의|담당 교사|주관|기조연설자|본인|친구|아들|딸|남편|아내|부친|모친|"
                    r"user|name|Name|의원명|학생|성명\(한글\)|피해자|가해자|신고인|제보자|참석자|발표자|연락처|문의)"
                    r"\s*[:：]?\s*[\"'(\[]?\s*$")
AFTER_PAREN = re.compile(r"^\s*\((?:\d|만|[一-鿿]|[남여]|\w{0,4}[,)]|부친|모친|장남|장녀|배우자|본인)")
_GENERIC_LABEL = re.compile(r"(?:[가-힣]{1,6}(?:자|인|사|원|장|관|측|님)|작성|응대|판사|주관|담당)\s*[:：]\s*$|^\s*\d{1,2}[.)]\s*$")
_GENERIC_LAST = frozenset(":：.)")  # the last non-space character of any _GENERIC_LABEL match
_ROLE_BEFORE = re.compile(r"[가-힣]*(?:자|측|장|관|사|의원|교수|위원|담임|선생)(?:는|은)?\s*[(（]?\s*$")
_ROLE_LAST = frozenset("자측장관사원수임생는은(（")  # … of any _ROLE_BEFORE match
_TITLE_AFTER_ORG = re.compile(  # 윤병세 외교부 장관, 김형완 인권정책연구소장: a title after one organisation word
    r"^\s+(?:[가-힣]{1,12}(?:부|청|처|원|회|당|소|단|국|실|과|팀|교|대|위|사|센터|재단|협회|공사|그룹|은행|병원|연구소)\s+"
    r"(?:장관|차관|청장|처장|원장|회장|위원장|위원|의원|대표|사장|이사장|총장|교수|소장|국장|실장|부장|과장|팀장|단장|센터장|연구원|기자|감독)"
    r"|[가-힣]{2,10}(?:장관|차관|청장|처장|원장|회장|위원장|이사장|총장|소장|국장|실장|부장|과장|팀장|단장|센터장|교수|기자|감독))"
    r"(?=[\s,.)은는이가을를의과와도께]|$)")
_PLACE_LAST = set("시구동도리로길대산항")  # 원주시, 서초구, 연평도, 서강대 …: a place when Kiwi knows the stem
_PLACE_BEFORE = re.compile(r"(?:[가-힣]{1,6}(?:시|도)|서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|전북|전남|"
                           r"경북|경남|제주)\s+$")
_PLACE_LAST_WEAK = set("동도")  # 화곡동, 백령도; names (김성동, 이현도) need person context
_NOT_NAME_LAST = set("군읍면역당궁함청관판사차파단회각변고법어")  # 진도군, 정의당, 경복궁, 천안함, 국적법, 한국어 …
# syllables of loanwords that Korean given names (Sino-Korean syllables) do not use: 유튜브, 이집트, 모로코

_LOAN = set("스트크브프드즈츠쿠키케코카타토테티피페포퓨튜릭렉웨워쟈져죠콘톤폴플블클그르므뉴듀디텔앤")


def _looks_like_name(form: str) -> bool:
    if not 2 <= len(form) <= 4 or not all("가" <= c <= "힣" for c in form):
        return False
    if form[:2] in SURNAMES_2 and len(form) in (3, 4):
        given = form[2:]
    elif form[0] in SURNAMES_1 and len(form) in (2, 3):
        given = form[1:]
    else:
        return False
    return all(c in GIVEN for c in given)
